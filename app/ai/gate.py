"""The provider-wide cap on AI calls in flight, shared by every worker through Redis, and the
order in which waiting calls get in: sites take turns (SPEC §9b), so a site with 5,000 keywords
queued does not starve ten small ones.

The order is start-time fair queueing by site: a site's n-th waiting call is due in round
`max(served round, the site's last round) + 1`, and calls go in by round, then by arrival. A
site that queues many calls at once gets rounds 1, 2, 3, ...; a site that arrives later starts
at the round being served, so it goes in at the next turn, not behind the whole backlog.

All state is in one Redis hash tag per provider and changes only in Lua scripts, so the cap holds
across workers. Holders renew their permit from a heartbeat; a worker that dies loses its permits
`lease` after its last renewal, and its waiting calls after `WAIT_LEASE_MS`. A release hands the
freed permits straight to the next calls in line and wakes them (one list per waiter), so a
waiter sleeps on BLPOP rather than polling, and holds its permit once woken.

Redis going away while a call holds its permit does not fail the call (its answer is paid for):
the heartbeat keeps trying, and a permit that lapsed meanwhile only lets the cap be exceeded
briefly. A release that cannot reach Redis leaves the permit to lapse on its own.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import structlog
from redis.asyncio import Redis
from redis.exceptions import NoScriptError, RedisError

from app.outage import Outage, redis_probe, retry_through_outage

log = structlog.get_logger(__name__)

# How long a waiting call stays in line without renewing (a dead worker's waiters go then).
WAIT_LEASE_MS = 10_000
# A waiter renews its place in line this often even without a wake-up (which also bounds what a
# lost wake-up costs): three times within its waiting lease. Each renewal is a script and a new
# BLPOP; with hundreds of calls in line, at 1 s they were most of the 9 % of a worker's loop
# that waiting in line took.
WAKE_TIMEOUT_SECONDS = 3.0

_PURGE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local dead = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now)
for _, token in ipairs(dead) do redis.call('ZREM', KEYS[2], token) end
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
"""

# Grants free permits to the head of the line; returns the tokens granted. Expects `now`.
_HAND_OFF = """
-- A score packs the round with an arrival number (exact below 2^53).
local ROUND = 1000000
local function hand_off(cap, lease, now)
  local granted = {}
  local free = cap - redis.call('ZCARD', KEYS[1])
  if free <= 0 then return granted end
  local head = redis.call('ZRANGE', KEYS[2], 0, free - 1, 'WITHSCORES')
  for i = 1, #head, 2 do
    local token, score = head[i], tonumber(head[i + 1])
    redis.call('ZREM', KEYS[2], token)
    redis.call('ZREM', KEYS[3], token)
    redis.call('ZADD', KEYS[1], now + lease, token)
    local round = math.floor(score / ROUND)
    if round > tonumber(redis.call('GET', KEYS[5]) or '0') then
      redis.call('SET', KEYS[5], round)
    end
    granted[#granted + 1] = token
  end
  if redis.call('ZCARD', KEYS[2]) == 0 then
    -- Nobody waits: the rounds only order waiters, so start again from 0 (scores stay small).
    redis.call('DEL', KEYS[4], KEYS[5], KEYS[6])
  end
  return granted
end
"""

# KEYS: held, line, waiting, rounds, served, arrivals. ARGV: token, site, cap, lease, wait lease.
# Returns 1 when the token holds a permit, 0 when it waits in line.
_ACQUIRE = (
    _HAND_OFF
    + _PURGE
    + """
local token, site = ARGV[1], ARGV[2]
local cap, lease, wait = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
if redis.call('ZSCORE', KEYS[1], token) then
  redis.call('ZADD', KEYS[1], now + lease, token)
  return 1
end
if not redis.call('ZSCORE', KEYS[2], token) then
  local served = tonumber(redis.call('GET', KEYS[5]) or '0')
  local last = tonumber(redis.call('HGET', KEYS[4], site) or '0')
  local round = math.max(served, last) + 1
  redis.call('HSET', KEYS[4], site, round)
  local arrival = redis.call('INCR', KEYS[6]) % ROUND
  redis.call('ZADD', KEYS[2], round * ROUND + arrival, token)
end
redis.call('ZADD', KEYS[3], now + wait, token)
local mine = 0
for _, granted in ipairs(hand_off(cap, lease, now)) do
  if granted == token then
    mine = 1
  else
    redis.call('RPUSH', KEYS[7] .. granted, 1)
    redis.call('PEXPIRE', KEYS[7] .. granted, wait)
  end
end
return mine
"""
)

# KEYS as acquire, plus the wake-up list prefix. ARGV: token, cap, lease, wait lease. Also drops
# the token's own wake-up list.
_RELEASE = (
    _HAND_OFF
    + _PURGE
    + """
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('DEL', KEYS[7] .. ARGV[1])
for _, granted in ipairs(hand_off(tonumber(ARGV[2]), tonumber(ARGV[3]), now)) do
  redis.call('RPUSH', KEYS[7] .. granted, 1)
  redis.call('PEXPIRE', KEYS[7] .. granted, tonumber(ARGV[4]))
end
return 1
"""
)

# ARGV: token, lease. Extends a held permit; 0 when it was lost (expired and purged).
_RENEW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return redis.call('ZADD', KEYS[1], 'XX', 'CH', now + tonumber(ARGV[2]), ARGV[1])
"""


@dataclass(frozen=True)
class Read:
    """A key's value, read in the round trip that brought a permit."""

    value: bytes | None


@dataclass(frozen=True)
class Turn:
    """How a call's turn came: after `waited` seconds, whether it waited in line (every permit
    was taken when it asked), and the key asked to be read with it."""

    waited: float
    queued: bool
    read: Read | None = None


class ProviderGate:
    """`async with gate.slot(site_id):` around one provider call."""

    def __init__(self, redis: Redis, provider: str, cap: int, *, lease_ms: int = 30_000) -> None:
        if cap < 1:
            raise ValueError("the cap on calls in flight must be at least 1")
        self._redis = redis
        self.cap = cap
        self._lease_ms = lease_ms
        tag = f"aigate:{{{provider}}}"
        self._keys = [
            f"{tag}:held",
            f"{tag}:line",
            f"{tag}:waiting",
            f"{tag}:rounds",
            f"{tag}:served",
            f"{tag}:arrivals",
            f"{tag}:wake:",
        ]
        self._acquire = redis.register_script(_ACQUIRE)
        self._release = redis.register_script(_RELEASE)
        self._renew = redis.register_script(_RENEW)
        self._outage = Outage(f"AI gate {provider}")

    @asynccontextmanager
    async def slot(self, site_id: int, *, read: str | None = None) -> AsyncIterator[Turn]:
        """Hold a permit for the block; yields how the turn came. With `read`, the round trip
        that brings the permit (the script that grants it, or the wake-up) also reads that key:
        what the caller must check once its permit comes, such as a pause sent while it waited,
        costs it no round trip of its own."""
        token = uuid.uuid4().hex
        try:
            began = time.perf_counter()
            queued, got = await self._wait_turn(token, site_id, read)
            heartbeat = asyncio.create_task(self._keep(token))
            try:
                yield Turn(time.perf_counter() - began, queued, got)
            finally:
                # Not awaited: a renewal that reaches Redis after the release finds no permit
                # to extend (ZADD XX), so the release need not wait a turn of the loop for it.
                heartbeat.cancel()
        finally:
            # Also when cancelled while waiting: leave the line, or give back a permit that
            # was handed over meanwhile. Sent now, not a turn of the loop later as a shielded
            # task's would be; a cancel that cuts it short sends it again, shielded.
            try:
                await self._give_back(token)
            except asyncio.CancelledError:
                await asyncio.shield(self._give_back(token))
                raise

    async def _give_back(self, token: str) -> None:
        args: list[str | int] = [token, self.cap, self._lease_ms, WAIT_LEASE_MS]
        try:
            await self._release(keys=self._keys, args=args)
        except RedisError as exc:
            # Never in place of the call's own outcome: the permit lapses with its lease.
            self._outage.met(exc)

    async def in_flight(self) -> int:
        """Calls holding a permit now, all workers together."""
        return int(await self._redis.zcard(self._keys[0]))

    async def _wait_turn(
        self, token: str, site_id: int, read: str | None
    ) -> tuple[bool, Read | None]:
        """Wait in line for a permit; says whether there was a line to wait in, and what the
        round trip that brought the permit read of `read`. While Redis is down the call waits for
        it to come back (no call goes out uncounted), then takes its place again: the script
        re-enters a token that a restarted Redis no longer has."""
        args: list[str | int] = [token, site_id, self.cap, self._lease_ms, WAIT_LEASE_MS]
        wake = self._keys[6] + token
        probes = [redis_probe(self._redis)]

        async def acquire() -> tuple[object, Read | None]:
            if read is None:
                return await self._acquire(keys=self._keys, args=args), None
            async with self._redis.pipeline(transaction=False) as pipe:
                # By its hash: a pipeline that registers a script first asks Redis whether it
                # has it, a round trip of its own.
                pipe.evalsha(self._acquire.sha, len(self._keys), *self._keys, *map(str, args))
                pipe.get(read)
                granted, value = await pipe.execute(raise_on_error=False)
            if isinstance(granted, NoScriptError):  # not loaded yet, or Redis restarted since
                granted = await self._acquire(keys=self._keys, args=args)
            for result in (granted, value):
                if isinstance(result, Exception):
                    raise result
            return granted, Read(value)

        async def sleep_until_woken() -> tuple[object, Read | None]:
            # A pipeline, not a transaction: the GET runs once the BLPOP returns.
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.blpop([wake], timeout=WAKE_TIMEOUT_SECONDS)  # type: ignore[arg-type]
                if read is None:
                    (woken,) = await pipe.execute()
                    return woken, None
                pipe.get(read)
                woken, value = await pipe.execute()
                return woken, Read(value)

        granted, got = await retry_through_outage(self._outage, acquire, probes)
        queued = not granted
        while not granted:
            woken, got = await retry_through_outage(self._outage, sleep_until_woken, probes)
            if woken is not None:
                break  # woken by the hand-off, which granted the permit
            granted, got = await retry_through_outage(self._outage, acquire, probes)
        return queued, got

    async def _keep(self, token: str) -> None:
        while True:
            await asyncio.sleep(self._lease_ms / 3000)
            try:
                kept = await self._renew(keys=self._keys[:1], args=[token, self._lease_ms])
            except RedisError as exc:
                self._outage.met(exc)  # tried again at the next beat
                continue
            if not kept:
                log.warning("AI gate permit lapsed during a call; the cap may be exceeded")
                return
