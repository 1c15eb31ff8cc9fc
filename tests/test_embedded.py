"""Embedded PostgreSQL starts one at a time on a machine: pgserver's first start as root creates a
system user outside any lock of its own, and two processes doing it at once failed one of them."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from app.embedded import POSTGRES_START_LOCK, postgres_start_lock

ASK_TIMEOUT_SECONDS = 30
START_TIMEOUT_SECONDS = 60

START_ONE = """
import sys
from pathlib import Path

from app.embedded import EmbeddedServices

services = EmbeddedServices(Path(sys.argv[1]), database="postgres")
print(services.start_postgres(), flush=True)
services.stop()
"""


def waits_for_the_start_lock(pid: int) -> bool:
    """Whether process `pid` is blocked asking for the start lock, as the kernel lists it:
    `1: -> FLOCK  ADVISORY  WRITE <pid> <major>:<minor>:<inode> 0 EOF`."""
    inode = os.stat(POSTGRES_START_LOCK).st_ino
    entries = [line.split() for line in Path("/proc/locks").read_text().splitlines()]
    return any(
        fields[1:3] == ["->", "FLOCK"] and fields[5] == str(pid) and fields[6].endswith(f":{inode}")
        for fields in entries
    )


def test_a_start_waits_until_the_one_under_way_ends(server_folder: Path) -> None:
    with postgres_start_lock():
        second = subprocess.Popen(
            [sys.executable, "-c", START_ONE, str(server_folder)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            deadline = time.monotonic() + ASK_TIMEOUT_SECONDS
            while not waits_for_the_start_lock(second.pid):
                assert second.poll() is None, second.communicate()
                assert time.monotonic() < deadline, "the second start never asked for the lock"
                time.sleep(0.05)
            # It waits before pgserver does anything: no user created, no initdb.
            assert not (server_folder / "postgres" / "PG_VERSION").exists()
        except BaseException:
            second.kill()
            second.communicate()
            raise
    stdout, stderr = second.communicate(timeout=START_TIMEOUT_SECONDS)
    assert second.returncode == 0, stderr
    assert stdout.startswith("postgresql://")
    assert (server_folder / "postgres" / "PG_VERSION").exists()
