"""Password hashing (argon2) and API keys (`ak_<prefix>_<secret>`, stored as a SHA-256 hash)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import re
import secrets
import sys
import threading
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from app.errors import ServiceUnavailable

_hasher = PasswordHasher()
KEY_SCHEME = "ak"
_HEX_PREFIX = re.compile("[0-9a-f]{12}")

# A verification takes one core for tens of milliseconds and 64 MiB: as many at once as there
# are cores, and a short queue (about half a second of work) behind them.
CHECK_WORKERS = (
    len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
)
CHECK_QUEUE = 4 * CHECK_WORKERS
BUSY_RETRY_AFTER_SECONDS = 1
# How much lower the checking threads' CPU priority is than the event loop's.
CHECK_NICENESS = 10


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def _yield_cpu_to_the_event_loop() -> None:
    """A checking thread runs on what the event loop leaves of the cores: with as many checks as
    cores, at equal priority, the loop would get a fraction of one and every request would wait.
    (Linux gives each thread its own nice value; elsewhere the threads keep the process's.)"""
    if sys.platform == "linux":
        thread = threading.get_native_id()
        niceness = os.getpriority(os.PRIO_PROCESS, thread) + CHECK_NICENESS
        os.setpriority(os.PRIO_PROCESS, thread, min(niceness, 19))


class PasswordChecks:
    """Password verifications on threads of their own, a bounded number at once.

    Not the event loop's default threads: those also serve DNS look-ups and other work, which
    must not wait behind a burst of logins. Past the queue's bound a login is refused at once
    (503) rather than queued behind work that would take longer than its client waits.
    """

    def __init__(self, workers: int, queue: int) -> None:
        self._executor = ThreadPoolExecutor(
            max_workers=workers,
            thread_name_prefix="password",
            initializer=_yield_cpu_to_the_event_loop,
        )
        self._most = workers + queue
        self._admitted = 0

    @asynccontextmanager
    async def admission(self) -> AsyncIterator[None]:
        """A place in line for one login's check, or ServiceUnavailable when the line is full."""
        if self._admitted >= self._most:
            raise ServiceUnavailable(
                "too many logins at once; retry shortly", retry_after=BUSY_RETRY_AFTER_SECONDS
            )
        self._admitted += 1
        try:
            yield
        finally:
            self._admitted -= 1

    async def verify(self, password_hash: str, password: str) -> bool:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, verify_password, password_hash, password)


password_checks = PasswordChecks(CHECK_WORKERS, CHECK_QUEUE)


@dataclass(frozen=True)
class NewKey:
    key: str
    prefix: str
    secret_hash: str


def hash_key(key: str) -> str:
    # The secret has 256 bits of entropy, so a fast hash is enough (no brute force possible).
    return hashlib.sha256(key.encode()).hexdigest()


def generate_api_key() -> NewKey:
    prefix = f"{KEY_SCHEME}_{secrets.token_hex(6)}"
    key = f"{prefix}_{secrets.token_urlsafe(32)}"
    return NewKey(key=key, prefix=prefix, secret_hash=hash_key(key))


def key_prefix(key: str) -> str | None:
    """The visible prefix of a well-formed key, or None (then the key is looked up nowhere: a
    header may carry any byte, and only hex digits go into the query)."""
    scheme, _, rest = key.partition("_")
    prefix_hex, _, secret = rest.partition("_")
    if scheme != KEY_SCHEME or not _HEX_PREFIX.fullmatch(prefix_hex) or not secret:
        return None
    return f"{scheme}_{prefix_hex}"


def key_matches(key: str, secret_hash: str) -> bool:
    return hmac.compare_digest(hash_key(key), secret_hash)
