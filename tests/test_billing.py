"""Billing (SPEC §6b, §8): the balance with what is held, the ledger newest first with its filters,
and each site's AI budget allocation."""

from __future__ import annotations

import itertools
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.credits.budget import allocation_percentages
from app.credits.ledger import top_up
from app.db import unit_of_work
from app.models.automation import RunStatus
from app.models.billing import CreditTransaction, Operation
from app.runs.events import RunLog
from tests.builders import create_automation_run, create_site, insert
from tests.factories import Tenant, create_tenant

BALANCE = "/api/v1/billing/balance/"
TRANSACTIONS = "/api/v1/billing/transactions/"

_keys = itertools.count(1)


def budget_path(site_id: int) -> str:
    return f"/api/v1/billing/sites/{site_id}/ai-budget/"


async def add_movement(
    session_factory: async_sessionmaker[AsyncSession],
    tenant: Tenant,
    kind: str,
    amount: str,
    *,
    key: str | None = None,
    site_id: int | None = None,
    run_pk: int | None = None,
    operation: str | None = "clustering",
) -> CreditTransaction:
    """A ledger row as the charging code writes it (the balance itself is not moved here)."""
    return await insert(
        session_factory,
        CreditTransaction(
            account_id=tenant.account_id,
            site_id=site_id,
            run_pk=run_pk,
            kind=kind,
            operation=operation,
            amount=Decimal(amount),
            balance_after=Decimal(100),
            idempotency_key=key or f"test:{next(_keys)}:{kind}",
            description=f"{kind} {amount}",
        ),
    )


class TestBalance:
    async def test_a_new_account_has_its_credits_and_nothing_reserved(
        self, client: httpx.AsyncClient, session_factory: async_sessionmaker[AsyncSession]
    ) -> None:
        tenant = await create_tenant(session_factory, credits=Decimal("42.5"))
        response = await client.get(BALANCE, headers=tenant.headers)
        assert response.status_code == 200
        assert response.json() == {
            "account_id": tenant.account_id,
            "credits": 42.5,
            "reserved": 0.0,
        }

    async def test_reserved_is_what_holds_not_yet_released_keep(
        self, client: httpx.AsyncClient, session_factory: async_sessionmaker[AsyncSession]
    ) -> None:
        tenant = await create_tenant(session_factory)
        other = await create_tenant(session_factory)
        # Item a: held 3, released 3 and charged 1.25. Item b: held 2, call in flight.
        await add_movement(session_factory, tenant, "reserve", "-3", key="a:reserve")
        await add_movement(session_factory, tenant, "release", "3", key="a:release")
        await add_movement(session_factory, tenant, "settle", "-1.25", key="a:settle")
        await add_movement(session_factory, tenant, "reserve", "-2", key="b:reserve")
        await add_movement(session_factory, other, "reserve", "-7", key="c:reserve")

        response = await client.get(BALANCE, headers=tenant.headers)

        assert response.json()["reserved"] == 2.0
        assert response.json()["credits"] == 100.0

    async def test_the_balance_needs_an_api_key(self, client: httpx.AsyncClient) -> None:
        response = await client.get(BALANCE)
        assert response.status_code == 401


async def ledger(client: httpx.AsyncClient, tenant: Tenant, **params: Any) -> dict[str, Any]:
    response = await client.get(TRANSACTIONS, params=params, headers=tenant.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


class TestTransactions:
    async def test_the_ledger_lists_the_accounts_movements_newest_first(
        self, client: httpx.AsyncClient, session_factory: async_sessionmaker[AsyncSession]
    ) -> None:
        tenant = await create_tenant(session_factory)
        other = await create_tenant(session_factory)
        async with unit_of_work(session_factory) as session:
            await top_up(
                session,
                account_id=tenant.account_id,
                amount=Decimal(5),
                idempotency_key="topup:second",
                description="Second top-up",
            )
        await add_movement(session_factory, other, "reserve", "-1")

        body = await ledger(client, tenant)

        assert body["total"] == 2
        assert [row["description"] for row in body["items"]] == ["Second top-up", "Initial credits"]
        newest = body["items"][0]
        assert set(newest) == {
            "id",
            "created_at",
            "kind",
            "operation",
            "amount",
            "balance_after",
            "site_id",
            "run_id",
            "description",
        }
        assert newest["kind"] == "topup"
        assert newest["amount"] == 5.0
        assert newest["balance_after"] == 105.0
        assert newest["operation"] is None
        assert newest["run_id"] is None

    async def test_filters_by_site_kind_and_run(
        self,
        client: httpx.AsyncClient,
        session_factory: async_sessionmaker[AsyncSession],
        settings: Settings,
    ) -> None:
        tenant = await create_tenant(session_factory)
        second_site = await create_site(session_factory, tenant)
        run = await create_automation_run(
            session_factory, tenant, RunLog(settings.log_path), status=RunStatus.COMPLETED
        )
        held = await add_movement(
            session_factory, tenant, "reserve", "-2", site_id=tenant.site_id, run_pk=run.id
        )
        released = await add_movement(
            session_factory, tenant, "release", "2", site_id=tenant.site_id, run_pk=run.id
        )
        elsewhere = await add_movement(
            session_factory, tenant, "reserve", "-4", site_id=second_site.id
        )

        by_site = await ledger(client, tenant, site_id=tenant.site_id)
        assert [row["id"] for row in by_site["items"]] == [released.id, held.id]
        assert all(row["run_id"] == run.run_id for row in by_site["items"])

        by_kind = await ledger(client, tenant, kind="reserve")
        assert [row["id"] for row in by_kind["items"]] == [elsewhere.id, held.id]

        by_run = await ledger(client, tenant, run_id=run.run_id, kind="release")
        assert [row["id"] for row in by_run["items"]] == [released.id]
        assert by_run["items"][0]["operation"] == "clustering"

        assert (await ledger(client, tenant, run_id="run_unknown"))["total"] == 0

    async def test_pages_of_the_ledger(
        self, client: httpx.AsyncClient, session_factory: async_sessionmaker[AsyncSession]
    ) -> None:
        tenant = await create_tenant(session_factory)
        rows = [await add_movement(session_factory, tenant, "adjustment", "1") for _ in range(4)]
        newest_first = [row.id for row in reversed(rows)]

        page = await ledger(client, tenant, limit=2, offset=1)

        assert [row["id"] for row in page["items"]] == newest_first[1:3]
        assert (page["total"], page["limit"], page["offset"]) == (5, 2, 1)

    @pytest.mark.parametrize(
        ("params", "field"),
        [
            ({"kind": "gift"}, "kind"),
            ({"limit": 0}, "limit"),
            ({"limit": 501}, "limit"),
            ({"offset": -1}, "offset"),
            ({"site_id": "abc"}, "site_id"),
            ({"run_id": "r" * 65}, "run_id"),
        ],
    )
    async def test_a_bad_filter_is_a_400_naming_it(
        self,
        client: httpx.AsyncClient,
        session_factory: async_sessionmaker[AsyncSession],
        params: dict[str, Any],
        field: str,
    ) -> None:
        tenant = await create_tenant(session_factory)
        response = await client.get(TRANSACTIONS, params=params, headers=tenant.headers)
        assert response.status_code == 400
        assert field in response.json()["error"]["message"]


GLOBAL = {
    "clustering": 15.0,
    "idea_generation": 10.0,
    "content_generation": 40.0,
    "image_prompt_extraction": 5.0,
    "image_generation": 30.0,
}
OWN = {
    "clustering": 20,
    "idea_generation": 20,
    "content_generation": 33.33,
    "image_prompt_extraction": 6.67,
    "image_generation": 20,
}


async def get_budget(client: httpx.AsyncClient, tenant: Tenant) -> dict[str, Any]:
    response = await client.get(budget_path(tenant.site_id), headers=tenant.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def put_budget(
    client: httpx.AsyncClient, tenant: Tenant, body: dict[str, Any]
) -> httpx.Response:
    return await client.put(budget_path(tenant.site_id), json=body, headers=tenant.headers)


class TestAIBudget:
    async def test_a_site_without_its_own_allocation_uses_the_global_one(
        self, client: httpx.AsyncClient, session_factory: async_sessionmaker[AsyncSession]
    ) -> None:
        tenant = await create_tenant(session_factory)
        assert await get_budget(client, tenant) == {
            "site_id": tenant.site_id,
            "use_global_defaults": True,
            **GLOBAL,
        }

    async def test_a_site_sets_its_own_percentages(
        self, client: httpx.AsyncClient, session_factory: async_sessionmaker[AsyncSession]
    ) -> None:
        tenant = await create_tenant(session_factory)
        response = await put_budget(client, tenant, {"use_global_defaults": False, **OWN})
        expected = {"site_id": tenant.site_id, "use_global_defaults": False, **OWN}
        assert response.status_code == 200, response.text
        assert response.json() == expected
        assert await get_budget(client, tenant) == expected
        async with session_factory() as session:
            percentages = await allocation_percentages(session, tenant.site_id)
        assert percentages[Operation.CONTENT_GENERATION] == Decimal("33.33")
        assert sum(percentages.values()) == 100

    async def test_going_back_to_the_global_defaults_keeps_the_sites_numbers_aside(
        self, client: httpx.AsyncClient, session_factory: async_sessionmaker[AsyncSession]
    ) -> None:
        tenant = await create_tenant(session_factory)
        await put_budget(client, tenant, {"use_global_defaults": False, **OWN})
        response = await put_budget(client, tenant, {"use_global_defaults": True})
        assert response.json() == {"site_id": tenant.site_id, "use_global_defaults": True, **GLOBAL}
        async with session_factory() as session:
            percentages = await allocation_percentages(session, tenant.site_id)
        assert percentages[Operation.CLUSTERING] == Decimal(15)

    @pytest.mark.parametrize(
        ("body", "fields"),
        [
            ({**OWN, "clustering": 19}, list(GLOBAL)),
            ({**OWN, "clustering": 21}, list(GLOBAL)),
            ({key: v for key, v in OWN.items() if key != "image_generation"}, ["image_generation"]),
            ({}, list(GLOBAL)),
            ({**OWN, "clustering": 101, "idea_generation": -61}, ["clustering", "idea_generation"]),
            ({**OWN, "clustering": 19.999}, ["clustering"]),
            ({**OWN, "clustering": "a lot"}, ["clustering"]),
            ({**OWN, "shares": 1}, ["shares"]),
        ],
    )
    async def test_a_bad_allocation_is_a_400_naming_the_fields_and_changes_nothing(
        self,
        client: httpx.AsyncClient,
        session_factory: async_sessionmaker[AsyncSession],
        body: dict[str, Any],
        fields: list[str],
    ) -> None:
        tenant = await create_tenant(session_factory)
        await put_budget(client, tenant, {"use_global_defaults": False, **OWN})
        before = await get_budget(client, tenant)

        response = await put_budget(client, tenant, {"use_global_defaults": False, **body})

        assert response.status_code == 400, response.text
        error = response.json()["error"]
        assert error["code"] == "invalid_input"
        for field in fields:
            assert field in error["message"]
        assert set(fields) <= {problem["field"] for problem in error["details"]}
        assert await get_budget(client, tenant) == before

    async def test_use_global_defaults_is_required(
        self, client: httpx.AsyncClient, session_factory: async_sessionmaker[AsyncSession]
    ) -> None:
        tenant = await create_tenant(session_factory)
        response = await put_budget(client, tenant, OWN)
        assert response.status_code == 400
        assert "use_global_defaults" in response.json()["error"]["message"]

    async def test_percentages_sent_with_the_global_defaults_must_still_sum_to_100(
        self, client: httpx.AsyncClient, session_factory: async_sessionmaker[AsyncSession]
    ) -> None:
        tenant = await create_tenant(session_factory)
        response = await put_budget(
            client, tenant, {"use_global_defaults": True, **OWN, "clustering": 50}
        )
        assert response.status_code == 400
        assert await get_budget(client, tenant) == {
            "site_id": tenant.site_id,
            "use_global_defaults": True,
            **GLOBAL,
        }
