"""Failed logins per email, counted in Redis: past the limit, logins wait until the window ends.

Bookkeeping errors (Redis down) never block a login: the password check still stands.
"""

from __future__ import annotations

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

from app.errors import TooManyRequests

log = structlog.get_logger(__name__)

MAX_FAILURES = 10
WINDOW_SECONDS = 15 * 60

# INCR and set the window on the first failure, atomically.
_COUNT_FAILURE = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return n
"""


def _key(email: str) -> str:
    return f"login:failures:{email.strip().lower()}"


async def check_login_allowed(redis: Redis, email: str) -> None:
    try:
        failures = int(await redis.get(_key(email)) or 0)
        wait = await redis.ttl(_key(email)) if failures >= MAX_FAILURES else 0
    except RedisError as exc:
        log.warning("login throttle unavailable", error=str(exc))
        return
    if failures >= MAX_FAILURES:
        raise TooManyRequests(
            "too many failed logins for this email; try again later",
            retry_after=max(int(wait), 1),
        )


async def note_login_failed(redis: Redis, email: str) -> None:
    try:
        await redis.eval(_COUNT_FAILURE, 1, _key(email), str(WINDOW_SECONDS))  # type: ignore[misc]
    except RedisError as exc:
        log.warning("login throttle unavailable", error=str(exc))


async def note_login_succeeded(redis: Redis, email: str) -> None:
    try:
        await redis.delete(_key(email))
    except RedisError as exc:
        log.warning("login throttle unavailable", error=str(exc))
