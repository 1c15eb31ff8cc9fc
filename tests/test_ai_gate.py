"""The provider-wide cap: shared by every worker through Redis, fair between sites, and robust
to callers that die or give up."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from redis.asyncio import Redis

from app.ai import gate as gate_module
from app.ai.gate import ProviderGate
from tests.servers.tcp_proxy import cuttable_proxy


@pytest.fixture
async def second_redis(redis_url: str) -> AsyncIterator[Redis]:
    """Another connection pool: what a second worker process would have."""
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


class Tracker:
    def __init__(self) -> None:
        self.now = 0
        self.most = 0

    async def call(self, gate: ProviderGate, site: int, release: asyncio.Event) -> None:
        async with gate.slot(site):
            self.now += 1
            self.most = max(self.most, self.now)
            await release.wait()
            self.now -= 1


class TestCap:
    async def test_two_workers_together_never_exceed_the_cap(
        self, redis: Redis, second_redis: Redis
    ) -> None:
        gates = [ProviderGate(redis, "p", 3), ProviderGate(second_redis, "p", 3)]
        tracker, release = Tracker(), asyncio.Event()
        calls = [
            asyncio.create_task(tracker.call(gates[i % 2], site=i % 5, release=release))
            for i in range(40)
        ]
        await _until_held(gates[0], 3)
        # Every caller has had time to try; still only three are in.
        await asyncio.sleep(0.2)
        assert tracker.now == 3
        release.set()
        async with asyncio.timeout(30):
            await asyncio.gather(*calls)
        assert tracker.most == 3
        assert await gates[0].in_flight() == 0

    async def test_providers_have_separate_caps(self, redis: Redis) -> None:
        first, second = ProviderGate(redis, "a", 1), ProviderGate(redis, "b", 1)
        async with first.slot(1), asyncio.timeout(5), second.slot(1):
            assert await first.in_flight() == await second.in_flight() == 1


class TestFairness:
    async def test_small_sites_get_turns_before_a_big_sites_backlog(self, redis: Redis) -> None:
        """Site 1 queues 20 calls; sites 2..6 then queue one each. With one permit, the small
        sites go in at the next turns, not after the backlog."""
        gate = ProviderGate(redis, "p", 1)
        order: list[int] = []
        blocker_in, blocker_out = asyncio.Event(), asyncio.Event()

        async def blocker() -> None:
            async with gate.slot(99):
                blocker_in.set()
                await blocker_out.wait()

        async def call(site: int) -> None:
            async with gate.slot(site):
                order.append(site)

        holding = asyncio.create_task(blocker())
        await blocker_in.wait()
        big = [asyncio.create_task(call(1)) for _ in range(20)]
        await _until_waiting(redis, 20)
        small = [asyncio.create_task(call(site)) for site in range(2, 7)]
        await _until_waiting(redis, 25)
        blocker_out.set()
        async with asyncio.timeout(30):
            await asyncio.gather(holding, *big, *small)
        assert sorted(order[:6]) == [1, 2, 3, 4, 5, 6]
        assert order[6:] == [1] * 19

    async def test_a_site_alone_is_served_in_arrival_order(self, redis: Redis) -> None:
        gate = ProviderGate(redis, "p", 1)
        order: list[int] = []
        gate_open = asyncio.Event()

        async def first() -> None:
            async with gate.slot(1):
                await gate_open.wait()

        async def call(n: int) -> None:
            async with gate.slot(1):
                order.append(n)

        head = asyncio.create_task(first())
        await _until_held(gate, 1)
        calls = []
        for n in range(5):
            calls.append(asyncio.create_task(call(n)))
            await _until_waiting(redis, n + 1)
        gate_open.set()
        await asyncio.gather(head, *calls)
        assert order == [0, 1, 2, 3, 4]


class TestFaults:
    async def test_a_caller_that_gives_up_while_waiting_leaves_the_line(self, redis: Redis) -> None:
        gate = ProviderGate(redis, "p", 1)
        release = asyncio.Event()
        tracker = Tracker()
        holder = asyncio.create_task(tracker.call(gate, 1, release))
        await _until_held(gate, 1)
        waiter = asyncio.create_task(tracker.call(gate, 2, asyncio.Event()))
        await _until_waiting(redis, 1)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        assert await redis.zcard("aigate:{p}:line") == 0
        release.set()
        await holder
        async with asyncio.timeout(5), gate.slot(3):
            assert await gate.in_flight() == 1

    async def test_a_dead_workers_permit_lapses_after_its_lease(self, redis: Redis) -> None:
        """A worker killed while holding a permit never releases it: it lapses after the lease
        (the heartbeat that would renew it died with the worker); a waiter finds it gone when it
        next renews its place in line (no release wakes it)."""
        dead = ProviderGate(redis, "p", 1, lease_ms=300)
        waiting = dead._acquire(
            keys=dead._keys, args=["dead-token", 1, 1, 300, 10_000]
        )  # what `slot()` does first; the worker then dies
        assert await waiting == 1
        alive = ProviderGate(redis, "p", 1)
        loop = asyncio.get_running_loop()
        began = loop.time()
        async with asyncio.timeout(5), alive.slot(2):
            waited = loop.time() - began
        assert 0.1 < waited < gate_module.WAKE_TIMEOUT_SECONDS + 1

    async def test_a_long_call_keeps_its_permit_past_the_lease(self, redis: Redis) -> None:
        gate = ProviderGate(redis, "p", 1, lease_ms=300)
        async with gate.slot(1):
            await asyncio.sleep(0.8)  # more than two leases: the heartbeat renews it
            assert await gate.in_flight() == 1
            assert not await _gets_in(ProviderGate(redis, "p", 1), within=0.3)

    async def test_a_call_outlives_redis_going_away_and_its_permit_lapses(
        self, redis: Redis, redis_url: str
    ) -> None:
        """Redis unreachable mid-call (a restart): the call's answer is kept, neither the
        failing heartbeat nor the failing release takes its place; the permit then lapses."""
        async with cuttable_proxy(redis_url) as proxy:
            through = Redis.from_url(proxy.url(), socket_timeout=0.2, socket_connect_timeout=0.2)
            gate = ProviderGate(through, "p", 1, lease_ms=300)
            async with gate.slot(1):
                proxy.cut()
                await asyncio.sleep(0.5)  # the call goes on; heartbeats fail meanwhile
                answer = "paid for"
            await through.aclose()
        assert answer == "paid for"
        async with asyncio.timeout(5), ProviderGate(redis, "p", 1).slot(2):
            assert await ProviderGate(redis, "p", 1).in_flight() == 1


class TestWakeUps:
    async def test_a_released_permit_wakes_the_next_caller_without_polling(
        self, redis: Redis, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The re-check a waiter makes without a wake-up is pushed out of reach: ten callers
        through a cap of one finish only if each release wakes the next."""
        monkeypatch.setattr(gate_module, "WAKE_TIMEOUT_SECONDS", 60)
        gate = ProviderGate(redis, "p", 1)
        done: list[int] = []

        async def call(n: int) -> None:
            async with gate.slot(n):
                done.append(n)

        async with asyncio.timeout(10):
            await asyncio.gather(*(call(n) for n in range(10)))
        assert sorted(done) == list(range(10))

    async def test_a_wake_up_reads_the_key_asked_for_as_it_was_when_the_permit_came(
        self, redis: Redis
    ) -> None:
        """A caller that waited in line gets, with its permit, the key it asked to have read
        (the runner's pause signal): its value when the wake-up came, not when it began waiting.
        One that gets in at once reads it with the script that lets it in."""
        gate = ProviderGate(redis, "p", 1)
        await redis.set("signal", "before")
        release = asyncio.Event()
        holder = asyncio.create_task(Tracker().call(gate, 1, release))
        await _until_held(gate, 1)

        async def waiter() -> gate_module.Turn:
            async with gate.slot(2, read="signal") as turn:
                return turn

        waiting = asyncio.create_task(waiter())
        await _until_waiting(redis, 1)
        await redis.set("signal", "sent while waiting")
        release.set()
        async with asyncio.timeout(10):
            turn = await waiting
        await holder

        assert turn.queued
        assert turn.read == gate_module.Read(b"sent while waiting")
        await redis.set("signal", "later")
        async with gate.slot(3, read="signal") as at_once:
            assert not at_once.queued
            assert at_once.read == gate_module.Read(b"later")


async def _gets_in(gate: ProviderGate, within: float) -> bool:
    try:
        async with asyncio.timeout(within), gate.slot(7):
            return True
    except TimeoutError:
        return False


async def _until_waiting(redis: Redis, count: int) -> None:
    await _until(lambda: redis.zcard("aigate:{p}:line"), count)


async def _until_held(gate: ProviderGate, count: int) -> None:
    await _until(gate.in_flight, count)


async def _until(probe: Callable[[], Awaitable[int]], at_least: int) -> None:
    """Poll Redis: the state is shared with other processes, so there is no event to await."""
    async with asyncio.timeout(10):
        while True:
            if await probe() >= at_least:
                return
            await asyncio.sleep(0.005)
