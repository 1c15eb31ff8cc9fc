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


def get_redis(request: Request) -> Redis:
    redis: Redis = request.app.state.redis
    return redis


def get_settings_dep(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_queue(request: Request) -> JobQueue:
    queue: JobQueue = request.app.state.queue
    return queue


RedisDep = Annotated[Redis, Depends(get_redis)]
QueueDep = Annotated[JobQueue, Depends(get_queue)]
SettingsDep = Annotated[Settings, Depends(get_settings_dep)]


async def get_principal(
    session: SessionDep,
    redis: RedisDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> tenancy.Principal:
    if credentials is None:
        raise Unauthorized("missing API key: send 'Authorization: Bearer <key>'")
    principal = await tenancy.authenticate(session, credentials.credentials)
    # Bookkeeping only: a Redis outage must not fail requests that do not need Redis.
    await best_effort(API_REDIS, note_key_used(redis, principal.api_key_id, datetime.now(UTC)))
    return principal


PrincipalDep = Annotated[tenancy.Principal, Depends(get_principal)]


async def get_site_from_query(
    session: SessionDep,
    principal: PrincipalDep,
    site_id: Annotated[int, id_query("The site's id.")],
) -> Site:
    return await tenancy.get_site(session, principal.account_id, site_id)


SiteDep = Annotated[Site, Depends(get_site_from_query)]
PageDep = Annotated[Pagination, Depends(pagination)]
