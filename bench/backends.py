"""PostgreSQL and Redis for a benchmark: the servers given, or embedded ones (SPEC §14) in a
temporary folder for what is not given, stopped and removed at the end."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from app.embedded import EmbeddedServices


@dataclass(frozen=True)
class Backends:
    database_url: str
    redis_url: str


@contextmanager
def backends(database_url: str | None, redis_url: str | None) -> Iterator[Backends]:
    """The servers given, or embedded ones for what is not given."""
    folder = Path(tempfile.mkdtemp(prefix="ca-bench-"))
    embedded = EmbeddedServices(folder, database="postgres")
    try:
        yield Backends(
            database_url or embedded.start_postgres(), redis_url or embedded.start_redis()
        )
    finally:
        embedded.stop()
        shutil.rmtree(folder, ignore_errors=True)
