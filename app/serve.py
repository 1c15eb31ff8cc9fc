"""The API and an arq worker (with its cron) in one process and one event loop; the API alone."""

from __future__ import annotations

import asyncio
import gc
import signal

from fastapi import FastAPI

from app.config import Settings
from app.credits.yields import prepare_clustering
from app.http_server import HttpServer
from app.main import create_app
from app.workers.worker import build_worker, close_worker

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class ServerStartFailed(RuntimeError):
    """The HTTP server could not start (address in use, startup of the app failed)."""


async def serve_api_and_worker(settings: Settings) -> None:
    """Run until SIGINT or SIGTERM, or until either part stops; then stop both cleanly.

    Raises what made a part stop on its own.
    """
    app = create_app(settings)
    server = HttpServer(app, settings.host, settings.port)
    # The signals are ours to handle: the worker is stopped by `close()`, not by its own handler.
    worker = build_worker(settings, handle_signals=False)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in STOP_SIGNALS:
        loop.add_signal_handler(sig, stop.set)
    parts = [
        asyncio.create_task(_serve_http(server), name="api"),
        asyncio.create_task(worker.async_run(), name="worker"),
    ]
    settling = asyncio.create_task(settle(app), name="settle")
    stopped = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait([*parts, stopped], return_when=asyncio.FIRST_COMPLETED)
    finally:
        settling.cancel()
        stopped.cancel()
        server.stop()
        await close_worker(worker)
        await asyncio.wait(parts)
        for sig in STOP_SIGNALS:
            loop.remove_signal_handler(sig)
    for part in parts:
        if not part.cancelled() and (error := part.exception()) is not None:
            raise error


async def serve_api(settings: Settings) -> None:
    """`automation api`: the HTTP server alone (uvicorn takes the signals), settling beside its
    start as `automation serve` does."""
    app = create_app(settings)
    settling = asyncio.create_task(settle(app), name="settle")
    try:
        await HttpServer(app, settings.host, settings.port).serve()
    finally:
        settling.cancel()


async def settle(app: FastAPI) -> None:
    """What the process does once, beside its start, so that its first requests and runs do not
    pay for it (issue 13: the first `run_now`s' start latencies). On a thread, the API answering
    meanwhile: the estimate's clustering loaded and run once (~1.5 s), and the OpenAPI document
    built, which prepares every route (FastAPI prepares a router's routes on the first request
    into it, and the document is what /docs serves anyway). Then every object so far (the
    modules, the app, the worker) is set aside from the garbage collector: a full collection
    otherwise walks them all, 100-250 ms with the event loop stopped, whenever the objects kept
    grow by a quarter, which the first requests' caches do."""
    await asyncio.to_thread(_prepare, app)
    gc.freeze()


def _prepare(app: FastAPI) -> None:
    prepare_clustering()
    app.openapi()


async def _serve_http(server: HttpServer) -> None:
    try:
        await server.serve()
    except SystemExit as exc:
        # uvicorn exits the process when it cannot start; the worker must be stopped first.
        address = f"{server.config.host}:{server.config.port}"
        raise ServerStartFailed(f"the HTTP server could not start on {address}") from exc
