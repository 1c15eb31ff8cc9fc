"""The API and an arq worker (with its cron) in one process and one event loop."""

from __future__ import annotations

import asyncio
import gc
import signal

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
    server = HttpServer(create_app(settings), settings.host, settings.port)
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
    settling = asyncio.create_task(settle(), name="settle")
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


async def settle() -> None:
    """What the process does once, beside its start, so that its first requests and runs do not
    pay for it: the estimate's clustering loaded (on a thread: the API answers meanwhile), then
    every object so far (the modules, the app, the worker) set aside from the garbage
    collector. A full collection otherwise walks them all, 100-250 ms with the event loop
    stopped, whenever the objects kept grow by a quarter, which the first requests' caches do:
    the first `run_now`s' worst start latencies (issue 13)."""
    await asyncio.to_thread(prepare_clustering)
    gc.freeze()


async def _serve_http(server: HttpServer) -> None:
    try:
        await server.serve()
    except SystemExit as exc:
        # uvicorn exits the process when it cannot start; the worker must be stopped first.
        address = f"{server.config.host}:{server.config.port}"
        raise ServerStartFailed(f"the HTTP server could not start on {address}") from exc
