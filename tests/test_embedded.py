"""Embedded PostgreSQL starts one at a time on a machine: pgserver's first start as root creates a
system user outside any lock of its own, and two processes doing it at once failed one of them."""

from __future__ import annotations

import os
import signal
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


def start_in_a_process(script: str, server_folder: Path) -> subprocess.Popen[str]:
    """`script` run by Python in a process of its own, given the folder, its output piped."""
    return subprocess.Popen(
        [sys.executable, "-c", script, str(server_folder)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


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
        second = start_in_a_process(START_ONE, server_folder)
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


START_AND_STAY = """
import sys
import time
from pathlib import Path

from app.embedded import EmbeddedServices

services = EmbeddedServices(Path(sys.argv[1]), database="postgres")
print(services.start_postgres(), flush=True)
time.sleep(3600)
"""


def postmaster_pid(server_folder: Path) -> int | None:
    """The pid of the folder's running PostgreSQL, from its `postmaster.pid`, or None."""
    pid_file = server_folder / "postgres" / "postmaster.pid"
    if not pid_file.exists():
        return None
    pid = int(pid_file.read_text().split()[0])
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    return pid


def test_a_server_left_by_a_killed_process_is_stopped_by_the_next_one_that_stops(
    server_folder: Path,
) -> None:
    """The killed process stays on pgserver's list of the server's users unless the next start
    takes it off; the next clean stop then left the server running, for good."""
    first = start_in_a_process(START_AND_STAY, server_folder)
    try:
        assert first.stdout is not None
        assert first.stdout.readline().startswith("postgresql://"), first.communicate()
        first.kill()
        first.communicate()
        left = postmaster_pid(server_folder)
        assert left is not None, "a killed process leaves its server running"

        second = subprocess.run(
            [sys.executable, "-c", START_ONE, str(server_folder)],
            capture_output=True,
            text=True,
            timeout=START_TIMEOUT_SECONDS,
            check=False,
        )
        assert second.returncode == 0, second.stderr
        assert postmaster_pid(server_folder) is None
    finally:
        first.kill()
        first.communicate()
        if (running := postmaster_pid(server_folder)) is not None:
            os.kill(running, signal.SIGTERM)
