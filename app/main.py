"""The FastAPI application factory."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import structlog
from fastapi import FastAPI
from fastapi.routing import APIRoute

from app.api import (
    auth,
    automation,
    automation_config,
    billing,
    ops,
    planner,
    publishers,
    publishing,
    sites,
    writer,
)
from app.api.errors import UnexpectedErrors, all_routes, install_error_handlers
from app.api.limits import BodySizeLimit
from app.api.openapi import build_openapi
from app.api.polls import POLLED, PolledReads
from app.config import Settings, get_settings
from app.db import create_engine, create_poll_pool, create_session_factory, open_first_connection
from app.media import MediaFiles
from app.observability import RequestMetrics, configure_logging
from app.redis import create_redis
from app.runs.events import RunLog
from app.tenancy.key_cache import KeyCache
from app.workers.queue import ArqQueue

# The dashboard, built from frontend/ by `make web` (Vite writes it here).
WEB_DIR = Path(__file__).resolve().parent / "web"

DESCRIPTION = """
Turns a site's keywords into published, illustrated articles through a seven-stage AI pipeline.

Every endpoint except login and the operations ones needs `Authorization: Bearer <api key>`.
Errors answer `{"error": {"code", "message", "details"}}`.
"""


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    if not settings.database_url or not settings.redis_url:
        raise RuntimeError(
            "DATABASE_URL and REDIS_URL must be set (`automation serve` starts embedded ones)"
        )
    database_url, redis_url = settings.database_url, settings.redis_url
    configure_logging(settings.log_level, settings.log_json)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(database_url, settings.db_pool_size)
        redis = create_redis(redis_url)
        app.state.engine = engine
        app.state.session_factory = create_session_factory(engine)
        # Reads that write nothing run each statement on its own (autocommit): no BEGIN and no
        # COMMIT, two round trips fewer. Only for reads whose statements need no common
        # snapshot (one statement, or a page and its count).
        read_engine = engine.execution_options(isolation_level="AUTOCOMMIT")
        app.state.read_session_factory = create_session_factory(read_engine)
        app.state.redis = redis
        app.state.queue = ArqQueue(redis)
        app.state.poll_pool = await create_poll_pool(database_url)
        first_connection = asyncio.create_task(open_first_connection(engine))
        try:
            yield
        finally:
            first_connection.cancel()
            await asyncio.wait([first_connection])
            await app.state.poll_pool.close()
            await redis.aclose()
            await engine.dispose()

    app = FastAPI(
        title="Content automation",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.run_log = RunLog(settings.log_path)
    app.state.key_cache = KeyCache()
    app.openapi = lambda: build_openapi(app)  # type: ignore[method-assign]
    install_error_handlers(app)
    for module in (
        ops,
        auth,
        sites,
        planner,
        writer,
        automation_config,
        automation,
        billing,
        publishing,
        publishers,
    ):
        app.include_router(module.router)
    polled = {
        route.path: route
        for route in all_routes(app.routes)
        if isinstance(route, APIRoute) and route.path in POLLED
    }
    app.add_middleware(PolledReads, routes=polled)
    app.add_middleware(BodySizeLimit, limit=settings.max_request_bytes)
    # Inside RequestMetrics, so that a bug's 500 is counted and logged like any answer.
    app.add_middleware(UnexpectedErrors)
    app.add_middleware(RequestMetrics)
    media = settings.media_path
    media.mkdir(parents=True, exist_ok=True)
    app.mount(settings.media_url, MediaFiles(directory=media), name="media")
    if (WEB_DIR / "index.html").is_file():
        app.frontend("/", directory=WEB_DIR, fallback="index.html")
    else:
        structlog.get_logger(__name__).warning(
            "dashboard not built: run `make web` to serve it", directory=str(WEB_DIR)
        )
    return app
