"""When each API key was last used.

Requests note the time in one Redis hash (O(1), no database write on the request path); a worker
cron moves the times into `api_keys.last_used_at` once a minute.
"""

from __future__ import annotations

from datetime import datetime

from redis.asyncio import Redis
from sqlalchemy import func, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.models.tenancy import ApiKey

USAGE_KEY = "apikeys:last_used"

# Deletes each field only if it still holds the value that was flushed: a newer use noted
# while the flush ran stays for the next one.
_FORGET_FLUSHED = """
local removed = 0
for i = 1, #ARGV, 2 do
  if redis.call('HGET', KEYS[1], ARGV[i]) == ARGV[i + 1] then
    removed = removed + redis.call('HDEL', KEYS[1], ARGV[i])
  end
end
return removed
"""


async def note_key_used(redis: Redis, api_key_id: int, at: datetime) -> None:
    # redis-py types its asyncio methods as sync-or-async; they are coroutines here.
    await redis.hset(USAGE_KEY, str(api_key_id), at.isoformat())  # type: ignore[misc]


async def flush_key_usage(session: AsyncSession, redis: Redis) -> dict[str, str]:
    """Write the noted times to the database. Returns what it wrote; call `forget_flushed` after
    the transaction commits."""
    noted: dict[bytes | str, bytes | str] = await redis.hgetall(USAGE_KEY)  # type: ignore[misc]
    flushed = {_text(k): _text(v) for k, v in noted.items()}
    for key_id, at in flushed.items():
        when = datetime.fromisoformat(at)
        await session.execute(
            update(ApiKey)
            .where(ApiKey.id == int(key_id))
            .values(last_used_at=func.greatest(func.coalesce(ApiKey.last_used_at, when), when))
        )
    return flushed


async def forget_flushed(redis: Redis, flushed: dict[str, str]) -> None:
    if flushed:
        args = [item for pair in flushed.items() for item in pair]
        await redis.eval(_FORGET_FLUSHED, 1, USAGE_KEY, *args)  # type: ignore[misc]


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
