"""The site lease (SPEC §9b): the Redis half of "one active run per site".

`SET lock:site:{id} <token> NX PX ttl` takes it; a heartbeat renews it by compare-and-pexpire;
release is compare-and-delete, so a holder whose lease lapsed and was taken by another worker
can never extend or delete the new holder's lease. The token starts with the run id, so a waiting
worker can tell a lease of its own run from one of another run.
"""

from __future__ import annotations

import secrets

from redis.asyncio import Redis

_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then
    return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
"""

_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
    return redis.call('del', KEYS[1])
end
return 0
"""


def lease_key(site_id: int) -> str:
    return f"lock:site:{site_id}"


async def lease_holder(redis: Redis, site_id: int) -> str | None:
    """The run id holding the site's lease, or None."""
    value = await redis.get(lease_key(site_id))
    if value is None:
        return None
    return bytes(value).decode().split(":", 1)[0]


class SiteLease:
    def __init__(self, redis: Redis, site_id: int, run_id: str, ttl_ms: int) -> None:
        self.redis = redis
        self.key = lease_key(site_id)
        self.token = f"{run_id}:{secrets.token_hex(8)}"
        self.ttl_ms = ttl_ms

    async def acquire(self) -> bool:
        return bool(await self.redis.set(self.key, self.token, nx=True, px=self.ttl_ms))

    async def renew(self) -> bool:
        """Extend the lease; False when it is no longer ours (lapsed, or taken over)."""
        renewed = await self.redis.eval(_RENEW, 1, self.key, self.token, str(self.ttl_ms))  # type: ignore[misc]
        return bool(renewed)

    async def release(self) -> bool:
        released = await self.redis.eval(_RELEASE, 1, self.key, self.token)  # type: ignore[misc]
        return bool(released)
