"""Operations: liveness, readiness (with a dependency down), metrics, the API's documentation."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from app.config import Settings
from app.main import create_app

UNREACHABLE_REDIS = "redis://127.0.0.1:1/0"
UNREACHABLE_DATABASE = "postgresql://postgres@127.0.0.1:1/x"

# SPEC section 6b: the paths built so far, with their methods.
SPEC_PATHS = {
    "/api/v1/auth/login": {"post"},
    "/api/v1/me": {"get"},
    "/api/v1/sites/": {"get", "post"},
    "/api/v1/sites/{site_id}/": {"get", "patch"},
    "/api/v1/planner/keywords/": {"get", "post"},
    "/api/v1/planner/keywords/import/": {"post"},
    "/api/v1/planner/keywords/{keyword_id}/": {"patch"},
    "/api/v1/planner/clusters/": {"get"},
    "/api/v1/planner/ideas/": {"get"},
    "/api/v1/writer/tasks/": {"get"},
    "/api/v1/writer/content/": {"get"},
    "/api/v1/writer/content/{content_id}/": {"get"},
    "/api/v1/writer/content/{content_id}/approve/": {"post"},
    "/api/v1/writer/content/{content_id}/reject/": {"post"},
    "/api/v1/writer/images/": {"get"},
    "/api/v1/automation/config/": {"get"},
    "/api/v1/automation/update_config/": {"put"},
    "/api/v1/automation/run_now/": {"post"},
    "/api/v1/automation/current_run/": {"get"},
    "/api/v1/automation/pipeline_overview/": {"get"},
    "/api/v1/automation/current_processing/": {"get"},
    "/api/v1/automation/run_progress/": {"get"},
    "/api/v1/automation/pause/": {"post"},
    "/api/v1/automation/resume/": {"post"},
    "/api/v1/automation/cancel/": {"post"},
    "/api/v1/automation/history/": {"get"},
    "/api/v1/automation/logs/": {"get"},
    "/api/v1/automation/estimate/": {"get"},
    "/api/v1/automation/runs/{run_id}/": {"get"},
    "/api/v1/automation/runs/{run_id}/events": {"get"},
    "/api/v1/billing/balance/": {"get"},
    "/api/v1/billing/transactions/": {"get"},
    "/api/v1/billing/sites/{site_id}/ai-budget/": {"get", "put"},
    "/api/v1/publishing/settings/": {"get", "put"},
    "/api/v1/publishing/queue/": {"get"},
    "/api/v1/publishing/integration/": {"get", "put"},
    "/api/v1/publishing/content/{content_id}/retry/": {"post"},
    "/healthz": {"get"},
    "/readyz": {"get"},
    "/metrics": {"get"},
}


@asynccontextmanager
async def running_app(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """A second application on other settings, with its lifespan running, and a client for it."""
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            yield c


@pytest.fixture
def openapi(app: FastAPI) -> dict[str, Any]:
    return app.openapi()


def _assert_error_body(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code
    error: dict[str, Any] = body["error"]
    return error


class TestLiveness:
    async def test_healthz_answers_ok(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/healthz")
        assert response.status_code == 200
        assert response.json() == {"status": "ok"}


class TestReadiness:
    async def test_readyz_is_ok_when_database_and_redis_answer(
        self, client: httpx.AsyncClient
    ) -> None:
        response = await client.get("/readyz")
        assert response.status_code == 200
        assert response.json() == {"status": "ok", "checks": {"database": "ok", "redis": "ok"}}

    async def test_readyz_is_503_naming_redis_when_redis_is_unreachable(
        self, settings: Settings
    ) -> None:
        async with running_app(settings.model_copy(update={"redis_url": UNREACHABLE_REDIS})) as c:
            response = await c.get("/readyz")
        error = _assert_error_body(response, 503, "unavailable")
        assert "redis" in error["message"]
        assert "database" not in error["message"]
        assert error["details"]["database"] == "ok"
        assert error["details"]["redis"].startswith("unreachable")

    async def test_readyz_is_503_naming_the_database_when_it_is_unreachable(
        self, settings: Settings
    ) -> None:
        broken = settings.model_copy(update={"database_url": UNREACHABLE_DATABASE})
        async with running_app(broken) as c:
            response = await c.get("/readyz")
        error = _assert_error_body(response, 503, "unavailable")
        assert "database" in error["message"]
        assert "redis" not in error["message"]
        assert error["details"]["redis"] == "ok"
        assert error["details"]["database"].startswith("unreachable")

    async def test_liveness_stays_ok_while_a_dependency_is_down(self, settings: Settings) -> None:
        broken = settings.model_copy(
            update={"redis_url": UNREACHABLE_REDIS, "database_url": UNREACHABLE_DATABASE}
        )
        async with running_app(broken) as c:
            health = await c.get("/healthz")
            ready = await c.get("/readyz")
        assert health.status_code == 200
        error = _assert_error_body(ready, 503, "unavailable")
        assert "database" in error["message"]
        assert "redis" in error["message"]


class TestMetrics:
    async def test_metrics_are_prometheus_text_counting_requests(
        self, client: httpx.AsyncClient
    ) -> None:
        await client.get("/healthz")
        response = await client.get("/metrics")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain")
        assert "# TYPE http_requests_total counter" in response.text
        assert 'http_requests_total{method="GET",route="/healthz",status="200"}' in response.text

    async def test_requests_are_counted_by_route_template_not_by_raw_path(
        self, client: httpx.AsyncClient
    ) -> None:
        await client.get("/api/v1/sites/12345/")
        response = await client.get("/metrics")
        assert 'route="/api/v1/sites/{site_id}/"' in response.text
        assert "/api/v1/sites/12345/" not in response.text


class TestOpenApi:
    async def test_openapi_json_is_served(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/openapi.json")
        assert response.status_code == 200
        assert response.json()["openapi"].startswith("3.1")

    @pytest.mark.parametrize("path", sorted(SPEC_PATHS))
    def test_every_spec_path_is_documented_with_its_methods(
        self, openapi: dict[str, Any], path: str
    ) -> None:
        assert path in openapi["paths"]
        assert SPEC_PATHS[path] <= set(openapi["paths"][path])

    def test_every_component_schema_has_a_title_and_a_description(
        self, openapi: dict[str, Any]
    ) -> None:
        schemas = openapi["components"]["schemas"]
        untitled = sorted(name for name, schema in schemas.items() if not schema.get("title"))
        undescribed = sorted(
            name for name, schema in schemas.items() if not schema.get("description")
        )
        assert (untitled, undescribed) == ([], [])

    def test_every_operation_has_a_summary(self, openapi: dict[str, Any]) -> None:
        missing = [
            f"{method.upper()} {path}"
            for path, operations in openapi["paths"].items()
            for method, operation in operations.items()
            if not operation.get("summary")
        ]
        assert missing == []

    def test_invalid_input_is_documented_as_the_400_error_body_not_as_422(
        self, openapi: dict[str, Any]
    ) -> None:
        # The API answers 400 with the error body for invalid input (never 422), so clients
        # generated from this document must not expect FastAPI's default 422 shape.
        documented_422 = [
            f"{method.upper()} {path}"
            for path, operations in openapi["paths"].items()
            for method, operation in operations.items()
            if "422" in operation.get("responses", {})
        ]
        assert documented_422 == []

    async def test_docs_is_the_swagger_ui_page(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/docs")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/html")
        assert "swagger-ui" in response.text
        assert "/openapi.json" in response.text


class TestUnroutedRequests:
    async def test_an_unknown_path_is_404_with_the_error_body(
        self, client: httpx.AsyncClient
    ) -> None:
        response = await client.get("/api/v1/no-such-thing")
        _assert_error_body(response, 404, "not_found")

    async def test_a_wrong_method_is_405_with_the_error_body_and_the_allowed_methods(
        self, client: httpx.AsyncClient
    ) -> None:
        response = await client.delete("/healthz")
        _assert_error_body(response, 405, "method_not_allowed")
        assert "GET" in response.headers.get("allow", "")
