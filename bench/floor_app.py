"""The floor a read of the service is measured against: FastAPI on the same uvicorn, one raw
asyncpg query per request (the API key's row by its prefix, as the service's authentication
reads it) and a small JSON answer. Nothing of the service (no ORM, no session, no middleware).

    FLOOR_DATABASE_URL=postgresql://... uvicorn --factory bench.floor_app:create_app

It runs in a process of its own: a bench-only route inside the service would change what is
measured, and in the bench's process it would share a core with the load generator.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from fastapi import FastAPI, Request

POOL_SIZE = 10
QUERY = (
    "SELECT id, user_id, account_id FROM api_keys WHERE prefix = $1 AND revoked_at IS NULL LIMIT 1"
)


def create_app() -> FastAPI:
    dsn = os.environ["FLOOR_DATABASE_URL"].replace("postgresql+asyncpg://", "postgresql://")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.pool = await asyncpg.create_pool(dsn, min_size=POOL_SIZE, max_size=POOL_SIZE)
        try:
            yield
        finally:
            await app.state.pool.close()

    app = FastAPI(lifespan=lifespan)

    @app.get("/floor")
    async def floor(request: Request, prefix: str) -> dict[str, Any]:
        row = await request.app.state.pool.fetchrow(QUERY, prefix)
        return {"key": dict(row) if row is not None else None}

    return app
