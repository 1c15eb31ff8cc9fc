"""A webhook receiver for published articles on 127.0.0.1 (uvicorn in the test's loop).

It does what a user's receiver should: verifies each delivery's signature
(`app.outbound.signing.verify`), drops a delivery id it has already processed, and keeps the
articles. It can be told to fail the first deliveries (a status each) before accepting.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from app.outbound.signing import DELIVERY_HEADER, verify
from tests.servers.wordpress import serve_app

PATH = "/hooks/articles"
# An old address of the receiver: it answers 301 to PATH, as a moved endpoint does.
MOVED_PATH = "/hooks/old-articles"


@dataclass(frozen=True)
class Delivery:
    headers: dict[str, str]
    body: bytes
    verified: bool

    @property
    def payload(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.body)
        return data

    @property
    def delivery_id(self) -> str:
        return self.headers[DELIVERY_HEADER.lower()]


@dataclass
class WebhookReceiver:
    secret: str
    # Answered in turn to the first deliveries; then 200.
    script: list[int] = field(default_factory=list)
    deliveries: list[Delivery] = field(default_factory=list)
    # The articles processed, one per delivery id.
    articles: dict[str, dict[str, Any]] = field(default_factory=dict)
    url: str = ""
    moved_url: str = ""

    async def handle(self, request: Request) -> Response:
        body = await request.body()
        headers = {k.lower(): v for k, v in request.headers.items()}
        delivery = Delivery(headers, body, verify(self.secret, headers, body))
        self.deliveries.append(delivery)
        if not delivery.verified:
            return JSONResponse({"error": "bad signature"}, status_code=401)
        if self.script:
            status = self.script.pop(0)
            return JSONResponse({"error": f"scripted {status}"}, status_code=status)
        if delivery.payload.get("event") == "ping":
            return JSONResponse({"ok": True})
        article = self.articles.setdefault(delivery.delivery_id, delivery.payload)
        return JSONResponse(
            {"id": f"article-{article['id']}", "url": f"{self.url}/{article['id']}"}
        )


@asynccontextmanager
async def serve_webhook_receiver(
    secret: str, script: list[int] | None = None
) -> AsyncIterator[WebhookReceiver]:
    receiver = WebhookReceiver(secret, list(script or []))

    async def moved(_: Request) -> Response:
        return RedirectResponse(PATH, status_code=301)

    app = Starlette(
        routes=[
            Route(PATH, receiver.handle, methods=["POST"]),
            Route(MOVED_PATH, moved, methods=["POST"]),
        ]
    )
    async with serve_app(app) as base:
        receiver.url = base + PATH
        receiver.moved_url = base + MOVED_PATH
        yield receiver
