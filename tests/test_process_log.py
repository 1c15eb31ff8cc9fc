"""The test suite's own log: run as `make test` runs it (xdist, two processes), on a small
project of its own, each process's log names its tests in order and a failure in full, and the
log of a process that died ends with the test it died in."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUN_TIMEOUT_SECONDS = 120
# As `make test` runs the suite: two xdist processes.
PYTEST_ARGS = ["-p", "tests.process_log", "-p", "no:cacheprovider", "-n", "2", "test_probe.py"]
LEFT_OVER = ".test-logs/from-an-earlier-run.log"

TESTS = """
import logging
import os

def test_passes():
    pass

def test_fails():
    logging.getLogger("probe").warning("what was logged before the failure")
    assert 1 == 2, "the failure"

def test_dies():
    os._exit(3)
"""


def test_each_process_logs_its_tests_and_the_failures_in_full(tmp_path: Path) -> None:
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "test_probe.py").write_text(TESTS)
    (tmp_path / LEFT_OVER).parent.mkdir()
    (tmp_path / LEFT_OVER).write_text("an earlier run's log\n")
    # A session of its own: none of this test process's xdist variables.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    ran = subprocess.run(
        [sys.executable, "-m", "pytest", *PYTEST_ARGS],
        cwd=tmp_path,
        env={**env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_SECONDS,
    )

    assert ran.returncode == 1, ran.stdout + ran.stderr
    folder = tmp_path / ".test-logs"
    assert f"its failures in full: {folder}/" in ran.stdout
    logs = {path.name: path.read_text() for path in folder.iterdir()}
    assert LEFT_OVER.rsplit("/")[-1] not in logs
    assert {"gw0.log", "gw1.log"} <= set(logs), logs
    (died,) = [log for log in logs.values() if "test_dies" in log]
    assert died.splitlines()[-1].endswith(" start  test_probe.py::test_dies"), died
    everything = "".join(logs.values())
    for line in (
        "start  test_probe.py::test_passes",
        "passed test_probe.py::test_passes (call,",
        "start  test_probe.py::test_fails",
        "failed test_probe.py::test_fails (call,",
        "AssertionError: the failure",
        " Captured log call ",
        "what was logged before the failure",
    ):
        assert line in everything, everything
