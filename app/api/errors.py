"""One error body everywhere: {"error": {"code", "message", "details"}}."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import AppError, is_backend_down

log = structlog.get_logger(__name__)

_HTTP_CODES = {
    401: "unauthorized",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


class ErrorDetail(BaseModel):
    """What went wrong, in a form a program can branch on and a person can read."""

    code: str = Field(description="Stable machine-readable error code, e.g. `not_found`.")
    message: str = Field(description="Human-readable explanation.")
    details: Any = Field(None, description="Extra context: the failing fields, counts, ...")


class ErrorBody(BaseModel):
    """The body of every error answer."""

    error: ErrorDetail


def error_response(
    status: int,
    code: str,
    message: str,
    details: Any = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    body = ErrorBody(error=ErrorDetail(code=code, message=message, details=details))
    all_headers = dict(headers or {})
    if status == 401:
        all_headers["WWW-Authenticate"] = "Bearer"
    return JSONResponse(body.model_dump(mode="json"), status_code=status, headers=all_headers)


def _field_name(error: Mapping[str, Any], body: Any) -> str:
    """The failing field as the client spelled it: pydantic puts the tag of a discriminated
    union (`kind: wordpress`) in the location, where the client's body has no such key."""
    if error["type"] in ("union_tag_invalid", "union_tag_not_found"):
        return str(error["ctx"]["discriminator"]).strip("'")
    loc = list(error["loc"])
    if loc and loc[0] in ("query", "path", "header"):
        return ".".join(str(p) for p in loc[1:])
    if loc and loc[0] == "body":
        loc = loc[1:]
    parts: list[str] = []
    node = body
    for i, part in enumerate(loc):
        last = i == len(loc) - 1
        if isinstance(node, dict) and part not in node and not last:
            continue
        parts.append(str(part))
        node = node[part] if isinstance(node, (dict, list)) and _has(node, part) else None
    return ".".join(parts) or "body"


def _has(node: dict[Any, Any] | list[Any], part: Any) -> bool:
    if isinstance(node, dict):
        return part in node
    return isinstance(part, int) and 0 <= part < len(node)


async def _app_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AppError)
    headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after is not None else None
    return error_response(exc.status_code, exc.code, exc.message, exc.details, headers)


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = [{"field": _field_name(e, exc.body), "message": e["msg"]} for e in exc.errors()]
    fields = ", ".join(dict.fromkeys(p["field"] for p in problems))
    return error_response(400, "invalid_input", f"invalid input: {fields}", problems)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = ", ".join(_allowed_methods(request))
    return error_response(exc.status_code, code, str(exc.detail), headers=headers)


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route takes at this path. Starlette's 405 names only the methods of
    the first route whose path matched, where GET and POST of one path are two routes."""
    methods: set[str] = set()
    for route in all_routes(request.app.router.routes):
        match, _ = route.matches({**request.scope, "method": "OPTIONS"})
        if match is not Match.NONE:
            methods.update(getattr(route, "methods", None) or ())
    return sorted(methods)


def all_routes(routes: Iterable[BaseRoute]) -> Iterator[BaseRoute]:
    """The routes of an app, those of included routers too: FastAPI keeps an included router
    as one entry holding the router (`original_router`), whose routes carry their full path
    (our routers take their prefix at creation, not when included)."""
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            yield from all_routes(included.routes)
        else:
            yield route


RETRY_AFTER_SECONDS = 5


def _backend_down(path: str, exc: Exception) -> JSONResponse:
    log.warning("backing service unavailable", path=path, error=repr(exc))
    return error_response(
        503,
        "unavailable",
        "the service is briefly unavailable (database or Redis unreachable); retry shortly",
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


class UnexpectedErrors:
    """What no handler answered: an outage of PostgreSQL or Redis is a 503 `unavailable` with
    `Retry-After` (`app.errors.is_backend_down` tells, whatever the driver wrapped it in); any
    other error is a bug, answered 500 in the one error body and logged with its traceback.

    Not an exception handler for `Exception`: Starlette gives that one to its outermost
    middleware, which re-raises after answering, so the server closes the connection. Here the
    error ends with the answer and the client's connection stays usable."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watch(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except Exception as exc:
            if is_backend_down(exc):
                response = _backend_down(scope["path"], exc)
            else:
                log.exception("unhandled error", path=scope["path"], exc_info=exc)
                response = error_response(500, "internal_error", "internal server error")
            if started:
                raise  # half an answer is out: only closing the connection tells the client
            await response(scope, receive, send)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(AppError, _app_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "Invalid input"},
    401: {"model": ErrorBody, "description": "Missing or invalid API key"},
    404: {"model": ErrorBody, "description": "Not found, or another account's"},
}
