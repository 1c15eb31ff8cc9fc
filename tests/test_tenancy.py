"""Tenancy: another account's site, keyword, article or run answers exactly like a missing one."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.db import unit_of_work
from app.models.automation import RunStatus
from app.models.tenancy import ApiKey
from app.runs.events import RunLog
from tests.builders import (
    PipelineRows,
    create_automation_run,
    create_pipeline_rows,
    snapshot,
    walk_content,
)
from tests.factories import Tenant, create_tenant

# An id no row has ever had: the tests below compare answers for it with the foreign ones.
NEVER_EXISTED = 987_654_321

CSV = b"keyword,volume\nintruder keyword,10\n"


Ids = dict[str, int | str]


@dataclass(frozen=True)
class Endpoint:
    """One endpoint that names a site, keyword, article or run; `target` says which id it names."""

    method: str
    path: str  # the OpenAPI path template
    target: str  # "site_id", "keyword_id", "content_id", "key_id" or "run_id"
    json: dict[str, Any] | None = None
    csv: bytes | None = None
    # The ids sent as query parameters; by default site_id, where the path names no id.
    query: tuple[str, ...] | None = None
    # The state the owner's run must be in for the owner's own call to succeed.
    owner_run: RunStatus = RunStatus.RUNNING
    # The (status, site_status) the owner's article must be in for the owner's own call to
    # succeed; it gets there through the content door.
    owner_content: tuple[str, str] | None = None

    def request(self, ids: Ids) -> dict[str, Any]:
        """The httpx request arguments, with the ids filled in (site_id as query if not in path)."""
        kwargs: dict[str, Any] = {"method": self.method, "url": self.path.format(**ids)}
        query = self.query
        if query is None:
            query = () if "{" in self.path else ("site_id",)
        if query:
            kwargs["params"] = {name: ids[name] for name in query}
        if self.json is not None:
            kwargs["json"] = self.json
        if self.csv is not None:
            kwargs["files"] = {"file": ("keywords.csv", self.csv, "text/csv")}
        return kwargs

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


ENDPOINTS = [
    Endpoint("GET", "/api/v1/sites/{site_id}/", "site_id"),
    Endpoint("PATCH", "/api/v1/sites/{site_id}/", "site_id", json={"name": "Taken over"}),
    Endpoint(
        "POST",
        "/api/v1/planner/keywords/",
        "site_id",
        json={"keywords": [{"keyword": "intruder keyword"}]},
    ),
    Endpoint("GET", "/api/v1/planner/keywords/", "site_id"),
    Endpoint("POST", "/api/v1/planner/keywords/import/", "site_id", csv=CSV),
    Endpoint(
        "PATCH", "/api/v1/planner/keywords/{keyword_id}/", "keyword_id", json={"disabled": True}
    ),
    Endpoint("GET", "/api/v1/planner/clusters/", "site_id"),
    Endpoint("GET", "/api/v1/planner/ideas/", "site_id"),
    Endpoint("GET", "/api/v1/writer/tasks/", "site_id"),
    Endpoint("GET", "/api/v1/writer/content/", "site_id"),
    Endpoint("GET", "/api/v1/writer/content/{content_id}/", "content_id"),
    Endpoint("POST", "/api/v1/writer/content/{content_id}/approve/", "content_id"),
    Endpoint("POST", "/api/v1/writer/content/{content_id}/reject/", "content_id"),
    Endpoint("GET", "/api/v1/writer/images/", "site_id"),
    Endpoint("DELETE", "/api/v1/auth/keys/{key_id}/", "key_id"),
    Endpoint("GET", "/api/v1/automation/config/", "site_id"),
    Endpoint("PUT", "/api/v1/automation/update_config/", "site_id", json={"stage_1_batch_size": 5}),
    Endpoint("GET", "/api/v1/automation/estimate/", "site_id"),
    Endpoint("GET", "/api/v1/billing/transactions/", "site_id"),
    Endpoint("GET", "/api/v1/billing/sites/{site_id}/ai-budget/", "site_id"),
    Endpoint(
        "PUT",
        "/api/v1/billing/sites/{site_id}/ai-budget/",
        "site_id",
        json={
            "use_global_defaults": False,
            "clustering": 20,
            "idea_generation": 20,
            "content_generation": 20,
            "image_prompt_extraction": 20,
            "image_generation": 20,
        },
    ),
    # A new run needs the site free of active runs.
    Endpoint("POST", "/api/v1/automation/run_now/", "site_id", owner_run=RunStatus.CANCELLED),
    Endpoint("POST", "/api/v1/automation/pause/", "run_id", query=("run_id",)),
    Endpoint(
        "POST",
        "/api/v1/automation/resume/",
        "run_id",
        query=("run_id",),
        owner_run=RunStatus.PAUSED,
    ),
    Endpoint("POST", "/api/v1/automation/cancel/", "run_id", query=("run_id",)),
    Endpoint("GET", "/api/v1/automation/current_run/", "site_id"),
    Endpoint("GET", "/api/v1/automation/pipeline_overview/", "site_id"),
    Endpoint("GET", "/api/v1/automation/current_processing/", "site_id"),
    Endpoint("GET", "/api/v1/automation/run_progress/", "site_id"),
    Endpoint("GET", "/api/v1/automation/history/", "site_id"),
    Endpoint("GET", "/api/v1/automation/logs/", "run_id", query=("run_id",)),
    Endpoint("GET", "/api/v1/automation/runs/{run_id}/", "run_id"),
    # The stream of a finished run ends by itself.
    Endpoint(
        "GET", "/api/v1/automation/runs/{run_id}/events", "run_id", owner_run=RunStatus.CANCELLED
    ),
    Endpoint("GET", "/api/v1/publishing/settings/", "site_id"),
    Endpoint("PUT", "/api/v1/publishing/settings/", "site_id", json={"queue_limit": 1}),
    Endpoint("GET", "/api/v1/publishing/queue/", "site_id"),
    Endpoint("GET", "/api/v1/publishing/integration/", "site_id"),
    Endpoint("PUT", "/api/v1/publishing/integration/", "site_id", json={"kind": "none"}),
    Endpoint("POST", "/api/v1/publishing/integration/test/", "site_id"),
    # Only a failed publication can be retried.
    Endpoint(
        "POST",
        "/api/v1/publishing/content/{content_id}/retry/",
        "content_id",
        owner_content=("approved", "failed"),
    ),
]


@dataclass(frozen=True)
class TwoTenants:
    owner: Tenant
    intruder: Tenant
    rows: PipelineRows
    owner_key_id: int

    @property
    def owner_ids(self) -> Ids:
        return {
            "site_id": self.owner.site_id,
            "keyword_id": self.rows.keyword_ids[0],
            "content_id": self.rows.content_id,
            "key_id": self.owner_key_id,
        }


async def owner_ids_for(
    endpoint: Endpoint,
    tenants: TwoTenants,
    session_factory: async_sessionmaker[AsyncSession],
    settings: Settings,
) -> Ids:
    """The owner's ids, with a run of the owner's site in the state the endpoint needs."""
    run = await create_automation_run(
        session_factory, tenants.owner, RunLog(settings.log_path), status=endpoint.owner_run
    )
    if endpoint.owner_content:
        async with unit_of_work(session_factory) as session:
            await walk_content(session, tenants.rows.content_id, *endpoint.owner_content)
    return {**tenants.owner_ids, "run_id": run.run_id}


@pytest.fixture
async def tenants(session_factory: async_sessionmaker[AsyncSession]) -> TwoTenants:
    owner = await create_tenant(session_factory, name="Owner")
    intruder = await create_tenant(session_factory, name="Intruder")
    rows = await create_pipeline_rows(session_factory, owner)
    # The intruder has rows of its own, so a leak would have something to mix in.
    await create_pipeline_rows(session_factory, intruder)
    async with session_factory() as session:
        owner_key_id = await session.scalar(
            select(ApiKey.id).where(ApiKey.user_id == owner.user_id)
        )
    assert owner_key_id is not None
    return TwoTenants(owner=owner, intruder=intruder, rows=rows, owner_key_id=owner_key_id)


def _without_id(body: dict[str, Any], row_id: int | str) -> dict[str, Any]:
    """The error body with the requested id blanked out of its message."""
    error = dict(body["error"])
    error["message"] = re.sub(rf"\b{re.escape(str(row_id))}\b", "<id>", error["message"])
    return {"error": error}


class TestAnotherAccountsRowsAnswerLikeMissingOnes:
    @pytest.mark.parametrize("endpoint", ENDPOINTS, ids=str)
    async def test_is_404_like_an_id_that_never_existed_and_changes_nothing(
        self,
        client: httpx.AsyncClient,
        session_factory: async_sessionmaker[AsyncSession],
        settings: Settings,
        tenants: TwoTenants,
        endpoint: Endpoint,
    ) -> None:
        foreign_ids = await owner_ids_for(endpoint, tenants, session_factory, settings)
        missing_ids = {**foreign_ids, endpoint.target: NEVER_EXISTED}
        before = await snapshot(session_factory)

        foreign = await client.request(
            **endpoint.request(foreign_ids), headers=tenants.intruder.headers
        )
        missing = await client.request(
            **endpoint.request(missing_ids), headers=tenants.intruder.headers
        )

        assert foreign.status_code == 404, foreign.text
        assert missing.status_code == 404, missing.text
        assert foreign.json()["error"]["code"] == "not_found"
        assert _without_id(foreign.json(), foreign_ids[endpoint.target]) == _without_id(
            missing.json(), NEVER_EXISTED
        )
        assert foreign.headers["content-type"] == missing.headers["content-type"]
        assert await snapshot(session_factory) == before

    @pytest.mark.parametrize("endpoint", ENDPOINTS, ids=str)
    async def test_the_same_call_by_the_owner_succeeds(
        self,
        client: httpx.AsyncClient,
        session_factory: async_sessionmaker[AsyncSession],
        settings: Settings,
        tenants: TwoTenants,
        endpoint: Endpoint,
    ) -> None:
        # The control: the 404s above come from tenancy, not from a request the API refuses.
        owner_ids = await owner_ids_for(endpoint, tenants, session_factory, settings)
        response = await client.request(
            **endpoint.request(owner_ids), headers=tenants.owner.headers
        )
        assert response.status_code in (200, 204), response.text


class TestEveryEndpointIsChecked:
    def test_every_endpoint_that_names_a_row_is_in_the_list_above(self, app: FastAPI) -> None:
        named = {
            (method.upper(), path)
            for path, operations in app.openapi()["paths"].items()
            for method, operation in operations.items()
            if "{" in path or any(p["name"] == "site_id" for p in operation.get("parameters", []))
        }
        covered = {(e.method, e.path) for e in ENDPOINTS}
        assert named - covered == set(), "add these endpoints to ENDPOINTS in this module"


class TestListsShowOnlyTheCallersRows:
    async def test_each_account_lists_only_its_own_sites(
        self, client: httpx.AsyncClient, tenants: TwoTenants
    ) -> None:
        created = await client.post(
            "/api/v1/sites/", json={"name": "Second"}, headers=tenants.owner.headers
        )
        assert created.status_code == 201
        owner_sites = await client.get("/api/v1/sites/", headers=tenants.owner.headers)
        intruder_sites = await client.get("/api/v1/sites/", headers=tenants.intruder.headers)

        assert [s["id"] for s in owner_sites.json()["items"]] == [
            tenants.owner.site_id,
            created.json()["id"],
        ]
        assert owner_sites.json()["total"] == 2
        assert [s["id"] for s in intruder_sites.json()["items"]] == [tenants.intruder.site_id]
        assert intruder_sites.json()["total"] == 1

    @pytest.mark.parametrize(
        ("path", "filter_name", "row"),
        [
            ("/api/v1/writer/images/", "content_id", "content_id"),
            ("/api/v1/planner/keywords/", "cluster_id", "cluster_id"),
            ("/api/v1/planner/ideas/", "cluster_id", "cluster_id"),
        ],
    )
    async def test_a_filter_naming_another_accounts_row_finds_nothing(
        self,
        client: httpx.AsyncClient,
        tenants: TwoTenants,
        path: str,
        filter_name: str,
        row: str,
    ) -> None:
        foreign_row_id: int = getattr(tenants.rows, row)
        response = await client.get(
            path,
            params={"site_id": tenants.intruder.site_id, filter_name: foreign_row_id},
            headers=tenants.intruder.headers,
        )
        assert response.status_code == 200
        assert response.json()["items"] == []
        assert response.json()["total"] == 0


class TestIdsOutsideTheDatabaseRange:
    @pytest.mark.parametrize(
        "path",
        [
            "/api/v1/sites/9223372036854775808/",
            "/api/v1/writer/content/9223372036854775808/",
            "/api/v1/planner/keywords/?site_id=9223372036854775808",
        ],
    )
    async def test_an_id_too_big_for_bigint_is_a_clear_client_error(
        self,
        client: httpx.AsyncClient,
        session_factory: async_sessionmaker[AsyncSession],
        path: str,
    ) -> None:
        tenant = await create_tenant(session_factory)
        response = await client.get(path, headers=tenant.headers)
        assert response.status_code in (400, 404), response.text
        assert response.json()["error"]["code"] in ("invalid_input", "not_found")
