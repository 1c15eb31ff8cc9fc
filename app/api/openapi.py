"""The OpenAPI document: FastAPI's, with our error answers instead of its 422s, and every
component schema named and described."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from app.schemas import not_null

# Schemas FastAPI names after the route, renamed to what they are.
_RENAMES = {
    "Body_import_keywords_api_v1_planner_keywords_import__post": (
        "KeywordCsvUpload",
        "A multipart form with the CSV file in the field `file`.",
    ),
}
# Enums carry no docstring of their own in the document.
_ENUM_DESCRIPTIONS = {
    "KeywordStatus": "Keyword status: `new` (not yet clustered) or `mapped` (in a cluster).",
    "ClusterStatus": "Cluster status: `new` (no ideas yet) or `mapped` (has ideas).",
    "IdeaStatus": "Idea status: `new`, or `queued` once a writing task exists.",
    "TaskStatus": "Task status: `queued`, `completed` or `failed`.",
    "ContentStatus": "Article status: `draft`, `review`, `approved`, `rejected`, `published`.",
    "SiteStatus": "Publishing status on the site: `not_published`, `scheduled`, `publishing`, "
    "`published` or `failed`.",
    "ImageStatus": "Image status: `pending` (prompt only), `generated` or `failed`.",
    "Frequency": "How often a scheduled run starts: `daily`, `weekly` (on `weekly_day`) or "
    "`monthly` (on `monthly_day`), at `scheduled_time` in the site's time zone.",
    "TransactionKind": "A ledger movement: `topup`, `reserve` (held before an AI call), "
    "`release` (the hold given back), `settle` (the real cost charged) or `adjustment`.",
    "RunStatus": "Run status: `running`, `paused`, `cancelled`, `completed` or `failed`.",
    "TriggerType": "What started a run: `manual` (run_now) or `scheduled`.",
    "StoppedReason": "Why a run ended: `completed`, `cancelled`, `credit_budget_reached` "
    "(`max_credits_per_run` or a function's share of it), `insufficient_credits` or `failed`.",
    "SchedulingMode": "How approved content gets its publishing slot: `time_slots` (each "
    "publish day at each of `publish_time_slots`), `stagger` (each publish day from "
    "`stagger_start_time` to `stagger_end_time`, every `stagger_interval_minutes`) or "
    "`immediate` (at once).",
    "Operation": "An AI function that costs credits: `clustering`, `idea_generation`, "
    "`content_generation`, `image_prompt_extraction` or `image_generation`.",
    "IntegrationKind": "A site's publisher: `none` (marked published when due), `wordpress` "
    "(REST API with an application password) or `webhook` (a signed POST of the article).",
}
_UNUSED = ("HTTPValidationError", "ValidationError")


def _rewrite_refs(node: Any, old: str, new: str) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and value == f"#/components/schemas/{old}":
                node[key] = f"#/components/schemas/{new}"
            else:
                _rewrite_refs(value, old, new)
    elif isinstance(node, list):
        for item in node:
            _rewrite_refs(item, old, new)


def build_openapi(app: FastAPI) -> dict[str, Any]:
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes
    )
    for path in schema["paths"].values():
        for operation in path.values():
            operation.get("responses", {}).pop("422", None)
            # A query string, path or header cannot carry a JSON null (`?x=null` is the text
            # "null"): an optional parameter is one left out.
            for parameter in operation.get("parameters", []):
                parameter["schema"] = not_null(parameter["schema"])
    schemas: dict[str, Any] = schema["components"]["schemas"]
    for name in _UNUSED:
        schemas.pop(name, None)
    for old, (new, description) in _RENAMES.items():
        if old in schemas:
            schemas[new] = {**schemas.pop(old), "title": new, "description": description}
            _rewrite_refs(schema, old, new)
    for name, description in _ENUM_DESCRIPTIONS.items():
        if name in schemas:
            schemas[name]["description"] = description
    for name, component in schemas.items():
        if name.startswith("Page_") and "description" not in component:
            item = name.removeprefix("Page_").rstrip("_")
            component["description"] = f"A page of {item} items."
    app.openapi_schema = schema
    return schema
