"""A cap on request body size, so an oversized upload is refused before it is stored."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.errors import error_response
from app.errors import PayloadTooLarge


class BodySizeLimit:
    """Refuses bodies over `limit` bytes with 413: at once when Content-Length says so, else
    as soon as the streamed body passes the limit."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit
        self.message = f"the request body is larger than {limit} bytes"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            response = error_response(
                PayloadTooLarge.status_code,
                PayloadTooLarge.code,
                self.message,
                {"limit_bytes": self.limit},
            )
            await response(scope, receive, send)
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    # Raised inside the endpoint's body read, where FastAPI turns any other
                    # exception into a 400; the HTTPException handler answers 413.
                    raise HTTPException(413, detail=self.message)
            return message

        await self.app(scope, counting_receive, send)
