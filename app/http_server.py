"""The HTTP server of `automation api` and `automation serve`: uvicorn, told to let the app know
when it starts to shut down. Requests in flight are answered; live streams (Server-Sent Events)
end at once, their clients reconnecting with `Last-Event-ID` to another replica or to this one
once it is back, instead of holding the shutdown until the process manager kills it."""

from __future__ import annotations

from types import FrameType

import uvicorn
from fastapi import FastAPI

# How long a shutdown waits for requests in flight (a large upload on a slow link) before it
# closes their connections: less than the 10 s Docker gives a container to stop.
GRACEFUL_SHUTDOWN_SECONDS = 8


def shutting_down(app: FastAPI) -> bool:
    """Whether the server serving `app` has begun to shut down."""
    return bool(getattr(app.state, "shutting_down", False))


class HttpServer(uvicorn.Server):
    def __init__(self, app: FastAPI, host: str, port: int) -> None:
        super().__init__(
            uvicorn.Config(
                app,
                host=host,
                port=port,
                log_config=None,
                timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
            )
        )
        self.app = app

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        """uvicorn's signal handler (`automation api`)."""
        self.app.state.shutting_down = True
        super().handle_exit(sig, frame)

    def stop(self) -> None:
        """Shut down as a signal would (`automation serve`, which handles the signals itself)."""
        self.app.state.shutting_down = True
        self.should_exit = True
