"""Sites: listing, creating and changing the account's sites."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.factories import Tenant, create_tenant

SITES = "/api/v1/sites/"


@pytest.fixture
async def tenant(session_factory: async_sessionmaker[AsyncSession]) -> Tenant:
    return await create_tenant(session_factory, site_name="Blog")


class TestCreateSite:
    async def test_creates_a_site_in_the_callers_account(
        self, client: httpx.AsyncClient, tenant: Tenant
    ) -> None:
        response = await client.post(
            SITES,
            json={"name": "Shop", "url": "https://shop.example.com", "timezone": "Europe/Berlin"},
            headers=tenant.headers,
        )
        assert response.status_code == 201
        site = response.json()
        assert (site["name"], site["url"], site["timezone"]) == (
            "Shop",
            "https://shop.example.com",
            "Europe/Berlin",
        )
        listing = await client.get(SITES, headers=tenant.headers)
        assert [s["name"] for s in listing.json()["items"]] == ["Blog", "Shop"]

    async def test_timezone_defaults_to_utc(
        self, client: httpx.AsyncClient, tenant: Tenant
    ) -> None:
        response = await client.post(SITES, json={"name": "Shop"}, headers=tenant.headers)
        assert response.json()["timezone"] == "UTC"

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({"name": "Shop", "timezone": "Mars/Olympus"}, "timezone"),
            ({"name": ""}, "name"),
            ({"url": "https://x.example"}, "name"),
            ({"name": "Shop", "owner": "me"}, "owner"),
            ({"name": "S\u0000hop"}, "name"),
        ],
    )
    async def test_bad_site_is_400_naming_the_field_and_creates_nothing(
        self, client: httpx.AsyncClient, tenant: Tenant, body: dict[str, str], field: str
    ) -> None:
        response = await client.post(SITES, json=body, headers=tenant.headers)
        assert response.status_code == 400
        assert field in response.json()["error"]["message"]
        listing = await client.get(SITES, headers=tenant.headers)
        assert listing.json()["total"] == 1


class TestChangeSite:
    async def test_patch_changes_only_the_given_fields(
        self, client: httpx.AsyncClient, tenant: Tenant
    ) -> None:
        response = await client.patch(
            f"{SITES}{tenant.site_id}/", json={"timezone": "Asia/Tokyo"}, headers=tenant.headers
        )
        assert response.status_code == 200
        assert (response.json()["name"], response.json()["timezone"]) == ("Blog", "Asia/Tokyo")
        again = await client.get(f"{SITES}{tenant.site_id}/", headers=tenant.headers)
        assert again.json()["timezone"] == "Asia/Tokyo"

    async def test_bad_timezone_is_400_and_changes_nothing(
        self, client: httpx.AsyncClient, tenant: Tenant
    ) -> None:
        response = await client.patch(
            f"{SITES}{tenant.site_id}/",
            json={"name": "Renamed", "timezone": "Nowhere/Special"},
            headers=tenant.headers,
        )
        assert response.status_code == 400
        assert "timezone" in response.json()["error"]["message"]
        site = await client.get(f"{SITES}{tenant.site_id}/", headers=tenant.headers)
        assert (site.json()["name"], site.json()["timezone"]) == ("Blog", "UTC")


class TestListSites:
    async def test_pages_through_sites(self, client: httpx.AsyncClient, tenant: Tenant) -> None:
        for name in ("B", "C", "D"):
            await client.post(SITES, json={"name": name}, headers=tenant.headers)
        response = await client.get(SITES, params={"limit": 2, "offset": 1}, headers=tenant.headers)
        body = response.json()
        assert (body["total"], body["limit"], body["offset"]) == (4, 2, 1)
        assert [s["name"] for s in body["items"]] == ["B", "C"]
