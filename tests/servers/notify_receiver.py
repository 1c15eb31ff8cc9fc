"""A run-notification receiver on 127.0.0.1: a real HTTP server (uvicorn) in the test's event loop.

It verifies each delivery's signature as a user's receiver would (`app.outbound.signing.verify`),
keeps what it received, and answers with the statuses it is told to (then 200), so a test can make
it fail a few times, always, or hang past the sender's timeout.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from app.outbound.signing import DELIVERY_HEADER, verify
from tests.servers.sockets import listening

PATH = "/hooks/runs"


@dataclass(frozen=True)
class Received:
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
class Receiver:
    secret: str
    # Answered in turn to the first requests; 200 afterwards ("hang" never answers).
    script: list[int | str] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    url: str = ""

    async def handle(self, request: Request) -> Response:
        body = await request.body()
        headers = {k.lower(): v for k, v in request.headers.items()}
        self.received.append(Received(headers, body, verify(self.secret, headers, body)))
        answer = self.script.pop(0) if self.script else 200
        if answer == "hang":
            await asyncio.Event().wait()
        assert isinstance(answer, int)
        return JSONResponse({"ok": answer < 400}, status_code=answer)

    @property
    def verified(self) -> list[Received]:
        return [delivery for delivery in self.received if delivery.verified]


@asynccontextmanager
async def serve_receiver(
    secret: str, script: list[int | str] | None = None
) -> AsyncIterator[Receiver]:
    """A receiver listening on a free port of 127.0.0.1 until the block ends."""
    receiver = Receiver(secret, list(script or []))
    app = Starlette(routes=[Route(PATH, receiver.handle, methods=["POST"])])
    sock = listening(backlog=64)
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, lifespan="off", ws="none", log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            await task
        await asyncio.sleep(0.01)
    receiver.url = f"http://127.0.0.1:{port}{PATH}"
    try:
        yield receiver
    finally:
        server.should_exit = True
        server.force_exit = True
        await asyncio.wait([task])
        sock.close()
