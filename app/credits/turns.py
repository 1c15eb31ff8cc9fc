"""Holds of one account go to the database one at a time from a worker.

Every hold takes its account's row (`UPDATE accounts … WHERE credits >= x`). An item holds its
credits before it waits in line for the provider, so with many runs of one account (an agency's
sites) a worker has hundreds of holds ready at once; sent together they would all wait on that
row lock in PostgreSQL, and a convoy of waiters woken one after another costs the database more
than the holds themselves (measured in `bench.sites`: the provider's permits held fell from
100 to 69 % of the cap). In turn, each is one short statement.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class AccountTurns:
    """`async with turns.turn(account_id):` around a statement that takes the account's row."""

    def __init__(self) -> None:
        # A lock lives while someone holds or waits for it: an account that stops holding leaves
        # nothing behind.
        self._locks: weakref.WeakValueDictionary[int, asyncio.Lock] = weakref.WeakValueDictionary()

    @asynccontextmanager
    async def turn(self, account_id: int) -> AsyncIterator[None]:
        lock = self._locks.get(account_id)
        if lock is None:
            lock = self._locks[account_id] = asyncio.Lock()
        async with lock:
            yield
