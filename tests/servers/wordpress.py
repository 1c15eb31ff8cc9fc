"""A WordPress REST API stand-in on 127.0.0.1: a real HTTP server (uvicorn) in the test's loop.

It implements what the publisher uses (`POST /wp-json/wp/v2/media`, `POST` and `GET
/wp-json/wp/v2/posts`, `GET /wp-json/wp/v2/users/me`) with application-password basic auth,
keeps what it received, and answers with scripted faults first: a status (500, 503 with
Retry-After, 401, ...), a delay, a body that does not decode, and optionally after doing the work
(the post is made but its answer is lost).
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from tests.servers.sockets import listening

API = "/wp-json/wp/v2"


@dataclass
class Fault:
    status: int | None  # None: the usual answer (after the delay)
    path: str | None = None  # only requests to this path (`/media`, `/posts`); None: any
    method: str | None = None
    retry_after: float | None = None
    delay: float = 0.0  # seconds before answering
    after: bool = False  # do the work, then answer with the fault
    message: str | None = None  # the error's message (say, one that echoes the credentials)
    garbled: bool = False  # a body that claims gzip and is not: no client can read it


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    at: float  # time.monotonic() on arrival


@dataclass
class Media:
    id: int
    data: bytes
    content_type: str
    filename: str
    source_url: str


@dataclass
class WordPress:
    username: str
    password: str
    url: str = ""
    faults: list[Fault] = field(default_factory=list)
    requests: list[Recorded] = field(default_factory=list)
    media: list[Media] = field(default_factory=list)
    posts: list[dict[str, Any]] = field(default_factory=list)
    _ids: int = 100

    def fail(self, status: int, *, times: int = 1, **options: Any) -> None:
        self.faults.extend(Fault(status, **options) for _ in range(times))

    def slow(self, seconds: float, *, times: int = 1, **options: Any) -> None:
        self.faults.extend(Fault(None, delay=seconds, **options) for _ in range(times))

    def add_post(self, slug: str, title: str = "Made earlier") -> dict[str, Any]:
        """A post that is already on the site (say, made by a worker that then died)."""
        return self._create_post({"slug": slug, "title": title, "status": "publish"})

    def calls(self, method: str, path: str) -> list[Recorded]:
        return [r for r in self.requests if r.method == method and r.path == API + path]

    async def handle(self, request: Request) -> Response:
        body = await request.body()
        path = request.url.path
        self.requests.append(
            Recorded(
                request.method,
                path,
                dict(request.query_params),
                {k.lower(): v for k, v in request.headers.items()},
                body,
                time.monotonic(),
            )
        )
        fault = self._next_fault(request.method, path.removeprefix(API))
        if fault is not None and fault.delay:
            await asyncio.sleep(fault.delay)
        if fault is not None and fault.status is not None and not fault.after:
            return self._fault(fault)
        if "authorization" not in request.headers:
            return _error(401, "rest_not_logged_in", "You are not currently logged in.")
        if not self._authorised(request):
            return _error(401, "incorrect_password", "The provided password is incorrect.")
        answer = self._route(request, path.removeprefix(API), body)
        if fault is not None and fault.status is not None:
            return self._fault(fault)
        return answer

    def _route(self, request: Request, path: str, body: bytes) -> Response:
        if path == "/media" and request.method == "POST":
            return self._upload(request, body)
        if path == "/posts" and request.method == "POST":
            return JSONResponse(self._create_post(json.loads(body)), status_code=201)
        if path == "/users/me" and request.method == "GET":
            return JSONResponse({"id": 1, "name": self.username.title(), "slug": self.username})
        if path == "/posts" and request.method == "GET":
            slug = request.query_params.get("slug")
            status = request.query_params.get("status", "publish")
            found = [
                p
                for p in self.posts
                if p["slug"] == slug and (status == "any" or p["status"] == status)
            ]
            return JSONResponse(found)
        return _error(404, "rest_no_route", "No route was found matching the URL.")

    def _upload(self, request: Request, body: bytes) -> Response:
        disposition = request.headers.get("content-disposition", "")
        if "filename=" not in disposition or not body:
            return _error(400, "rest_upload_no_data", "No data supplied.")
        filename = disposition.split("filename=", 1)[1].strip('"')
        self._ids += 1
        media = Media(
            self._ids,
            body,
            request.headers.get("content-type", ""),
            filename,
            f"{self.url}/wp-content/uploads/{filename}",
        )
        self.media.append(media)
        return JSONResponse(
            {"id": media.id, "source_url": media.source_url, "mime_type": media.content_type},
            status_code=201,
        )

    def _create_post(self, fields: dict[str, Any]) -> dict[str, Any]:
        slug = fields.get("slug") or f"post-{self._ids + 1}"
        taken = {p["slug"] for p in self.posts}
        unique, n = slug, 2
        while unique in taken:  # as WordPress does
            unique, n = f"{slug}-{n}", n + 1
        self._ids += 1
        post = {
            "id": self._ids,
            "slug": unique,
            "link": f"{self.url}/{unique}/",
            "status": fields.get("status", "draft"),
            "title": fields.get("title", ""),
            "content": fields.get("content", ""),
            "excerpt": fields.get("excerpt", ""),
            "featured_media": fields.get("featured_media", 0),
        }
        self.posts.append(post)
        return post

    def _authorised(self, request: Request) -> bool:
        scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return False
        user, _, password = base64.b64decode(encoded).decode().partition(":")
        return (user, password) == (self.username, self.password)

    def _next_fault(self, method: str, path: str) -> Fault | None:
        for index, fault in enumerate(self.faults):
            if fault.path in (None, path) and fault.method in (None, method):
                return self.faults.pop(index)
        return None

    def _fault(self, fault: Fault) -> Response:
        assert fault.status is not None
        if fault.garbled:
            headers = {"content-type": "application/json", "content-encoding": "gzip"}
            return Response(b"{not gzip at all", status_code=fault.status, headers=headers)
        headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
        if fault.status == 401:
            # WordPress's answer to a wrong application password.
            return _error(401, "incorrect_password", "The provided password is incorrect.")
        message = fault.message or f"Scripted fault {fault.status}"
        return _error(fault.status, "scripted_fault", message, headers)


def _error(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    body = {"code": code, "message": message, "data": {"status": status}}
    return JSONResponse(body, status_code=status, headers=headers)


@asynccontextmanager
async def serve_app(app: ASGIApp) -> AsyncIterator[str]:
    """Serve `app` on a free port of 127.0.0.1 until the block ends; yields its base URL.

    The socket listens before the server task starts, so a request made at once waits in the
    backlog instead of being refused.
    """
    sock = listening(backlog=64)
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, lifespan="off", ws="none", log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        server.force_exit = True
        await task
        sock.close()


@asynccontextmanager
async def serve_wordpress(
    username: str = "editor", password: str = "abcd efgh ijkl mnop qrst uvwx"
) -> AsyncIterator[WordPress]:
    wordpress = WordPress(username, password)
    methods = ["GET", "POST"]
    app = Starlette(routes=[Route(API + "/{rest:path}", wordpress.handle, methods=methods)])
    async with serve_app(app) as url:
        wordpress.url = url
        yield wordpress
