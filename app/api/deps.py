"""Request dependencies: the database session, the caller, the caller's site, Redis and the
job queue."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated

import structlog
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

from app.api.params import id_query, pagination
from app.config import Settings
from app.db import unit_of_work
from app.errors import Unauthorized
from app.models.tenancy import Site
from app.outage import Outage, best_effort
from app.queue import JobQueue
from app.schemas import Pagination
from app.tenancy import service as tenancy
from app.tenancy.key_cache import KeyCache
from app.tenancy.security import hash_key
from app.tenancy.usage import note_key_used

log = structlog.get_logger(__name__)

# The API's view of Redis, for what it writes there that can be skipped while Redis is down.
API_REDIS = Outage("api")

_bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer ak_...`")


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One transaction per request: committed when the endpoint returns, rolled back on error;
    its effects (`app.effects`) run once it is committed, before the answer is sent."""
    async with unit_of_work(request.app.state.session_factory) as session:
        yield session


# scope="function": the commit happens before the answer is sent, so a failed commit is an error.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


# The dependencies are `async def` though they do not wait: FastAPI runs a plain `def`
# dependency on a worker thread, a hand-off that cost more than the rest of a status read.
async def get_redis(request: Request) -> Redis:
    redis: Redis = request.app.state.redis
    return redis


async def get_settings_dep(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_queue(request: Request) -> JobQueue:
    queue: JobQueue = request.app.state.queue
    return queue


async def get_key_cache(request: Request) -> KeyCache:
    cache: KeyCache = request.app.state.key_cache
    return cache


RedisDep = Annotated[Redis, Depends(get_redis)]
QueueDep = Annotated[JobQueue, Depends(get_queue)]
SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
KeyCacheDep = Annotated[KeyCache, Depends(get_key_cache)]


async def get_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> tenancy.Principal:
    state = request.app.state
    cache: KeyCache = state.key_cache
    if credentials is None:
        raise Unauthorized("missing API key: send 'Authorization: Bearer <key>'")
    digest = hash_key(credentials.credentials)
    principal = cache.get(digest)
    if principal is None:
        async with state.read_session_factory() as session:
            principal = await tenancy.authenticate(session, credentials.credentials)
        cache.put(digest, principal)
    await note_use(cache, state.redis, principal)
    return principal


async def note_use(cache: KeyCache, redis: Redis, principal: tenancy.Principal) -> None:
    """Note the key's use in Redis, if none was noted lately (`KeyCache.use_to_note`)."""
    if cache.use_to_note(principal.api_key_id):
        # Bookkeeping only: a Redis outage must not fail requests that do not need Redis.
        used = note_key_used(redis, principal.api_key_id, datetime.now(UTC))
        if await best_effort(API_REDIS, used):
            cache.use_noted(principal.api_key_id)


PrincipalDep = Annotated[tenancy.Principal, Depends(get_principal)]
SiteIdQuery = Annotated[int, id_query("The site's id.")]


async def get_site_from_query(
    session: SessionDep,
    principal: PrincipalDep,
    site_id: SiteIdQuery,
) -> Site:
    return await tenancy.get_site(session, principal.account_id, site_id)


SiteDep = Annotated[Site, Depends(get_site_from_query)]


PageDep = Annotated[Pagination, Depends(pagination)]
