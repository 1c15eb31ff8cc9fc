"""The status reads clients poll, and their answer without FastAPI's request handling.

Every dashboard and monitoring script polls `current_run` and `run_progress`, several times a
second between them. FastAPI's handling of a request (matching its route, solving its
dependencies, validating and serializing the answer, the exception and exit-stack layers around
them) took more CPU than the read itself: these answered at a quarter of `/healthz`'s rate or
less. `PolledReads` answers their plain form itself, with the same reads as the endpoints: a
GET whose only parameter is `site_id`, with an API key this process verified within the last
second (`app.tenancy.key_cache`, so a revoked key is refused as promptly as elsewhere). Every
other request goes on to the endpoint, and so does one whose answer would not be a 200 (another
account's site, a site that never ran): the documented endpoints stay the one contract, and
their answers are the same as this path's, byte for byte.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping

import asyncpg
from fastapi.responses import Response
from fastapi.security.utils import get_authorization_scheme_param
from pydantic import BaseModel
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from app.api.deps import note_use
from app.errors import AppError
from app.runs import progress, reads
from app.runs.memo import RowMemo, clock_second
from app.runs.reads import RunRow
from app.runs.schemas import CurrentRunOut, RunOut, RunProgress
from app.schemas import MAX_ID
from app.tenancy.key_cache import KeyCache
from app.tenancy.security import hash_key

# The answers by the run row's version (`app.runs.memo`): the same until the row changes.
_CURRENT_RUNS: RowMemo[CurrentRunOut] = RowMemo()
_PROGRESSES: RowMemo[RunProgress] = RowMemo()


async def current_run_of(pool: asyncpg.Pool, account_id: int, site_id: int) -> CurrentRunOut:
    """The site's active run, or null; NotFound when the site is not the account's."""
    run = await reads.site_active_run(pool, account_id, site_id)
    if run is None:
        return CurrentRunOut(run=None)
    return _CURRENT_RUNS.answer(
        (run["run_id"], run["version"]),
        lambda: CurrentRunOut(run=RunOut.model_validate(dict(run))),
    )


async def latest_progress_of(
    pool: asyncpg.Pool, account_id: int, site_id: int
) -> RunProgress | None:
    """The progress of the site's active run, else of its latest; None when the site never ran
    (what it has pending is then counted, in a session); NotFound when the site is not the
    account's."""
    run = await reads.site_run_to_show(pool, account_id, site_id)
    if run is None:
        return None
    # A run that has not ended shows its duration so far (and, running, an ETA): by the second.
    ended = run["completed_at"] is not None or run["cancelled_at"] is not None
    return _PROGRESSES.answer(
        (run["run_id"], run["version"], None if ended else clock_second()),
        lambda: progress.run_progress(RunRow.of(run)),
    )


Read = Callable[[asyncpg.Pool, int, int], Awaitable[BaseModel | None]]

# The reads `PolledReads` answers, by the path of their endpoint.
POLLED: dict[str, Read] = {
    "/api/v1/automation/current_run/": current_run_of,
    "/api/v1/automation/run_progress/": latest_progress_of,
}
_SITE_ID_ALONE = re.compile(rb"site_id=([0-9]{1,19})")


class PolledReads:
    """Answers `POLLED` reads of the plain form before FastAPI's routing; the rest goes on.

    Inside `RequestMetrics` and `UnexpectedErrors`: an answer from here is counted and logged
    under its endpoint's route (`routes`, by path), and an outage is the same 503."""

    def __init__(self, app: ASGIApp, routes: Mapping[str, BaseRoute]) -> None:
        self.app = app
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        read = None
        if scope["type"] == "http" and scope["method"] == "GET":
            read = POLLED.get(scope["path"])
        answer = await _answer(scope, read) if read is not None else None
        if answer is None:
            await self.app(scope, receive, send)
            return
        scope["route"] = self.routes[scope["path"]]
        await Response(answer, media_type="application/json")(scope, receive, send)


async def _answer(scope: Scope, read: Read) -> bytes | None:
    """The read's answer as its endpoint would give it with a 200, or None for the endpoint to
    answer."""
    site_id = _site_id(scope["query_string"])
    key = _bearer_key(scope["headers"])
    if site_id is None or key is None:
        return None
    state = scope["app"].state
    cache: KeyCache = state.key_cache
    principal = cache.get(hash_key(key))
    if principal is None:
        return None
    await note_use(cache, state.redis, principal)
    try:
        found = await read(state.poll_pool, principal.account_id, site_id)
    except AppError:
        return None
    return found.model_dump_json().encode() if found is not None else None


def _site_id(query: bytes) -> int | None:
    """`site_id` when it is the only parameter, in plain digits and in range."""
    match = _SITE_ID_ALONE.fullmatch(query)
    if match is None:
        return None
    site_id = int(match[1])
    return site_id if 1 <= site_id <= MAX_ID else None


def _bearer_key(headers: list[tuple[bytes, bytes]]) -> str | None:
    """The key of the first Authorization header, read as FastAPI's `HTTPBearer` reads it."""
    for name, value in headers:
        if name == b"authorization":
            scheme, key = get_authorization_scheme_param(value.decode("latin-1"))
            return key if scheme.lower() == "bearer" and key else None
    return None
