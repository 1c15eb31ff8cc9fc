"""A pytest plugin: each test process keeps its own log in `.test-logs/` of the rootdir (gw0.log,
gw1.log under xdist, main.log without), and a failing run names the folder.

A log holds each test as it starts and ends, in the order that process ran them, and every
failure in full (traceback, captured log and output). It is written as it goes, so it survives a
process that dies or hangs, and the tests that ran before a failure in the same process (an
order-dependent failure's suspects) are there to read.
"""

from __future__ import annotations

import os
import shutil
from datetime import datetime
from pathlib import Path
from typing import TextIO

import pytest

FOLDER = ".test-logs"


class ProcessLog:
    def __init__(self, path: Path) -> None:
        self._file: TextIO = path.open("a", encoding="utf-8")

    def _write(self, text: str) -> None:
        self._file.write(f"{datetime.now():%H:%M:%S.%f} {text}\n")
        self._file.flush()

    def pytest_runtest_logstart(self, nodeid: str) -> None:
        self._write(f"start  {nodeid}")

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when == "call" or report.failed or report.skipped:
            self._write(
                f"{report.outcome} {report.nodeid} ({report.when}, {report.duration:.2f} s)"
            )
        if report.failed:
            self._file.write(report.longreprtext + "\n")
            for title, content in report.sections:
                self._file.write(f"{f' {title} ':-^100}\n{content}\n")
            self._file.flush()

    def pytest_unconfigure(self) -> None:
        self._file.close()


def pytest_sessionstart(session: pytest.Session) -> None:
    """The process that starts the xdist workers empties the folder before they exist; each
    process that runs tests (the workers, or this one without xdist) keeps its log there."""
    config = session.config
    folder = config.rootpath / FOLDER
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker is None:
        shutil.rmtree(folder, ignore_errors=True)
        # Another session in the same checkout may have made it again in between.
        folder.mkdir(exist_ok=True)
    if worker is not None or not config.pluginmanager.hasplugin("dsession"):
        config.pluginmanager.register(ProcessLog(folder / f"{worker or 'main'}.log"))


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, exitstatus: int, config: pytest.Config
) -> None:
    if exitstatus != pytest.ExitCode.OK:
        terminalreporter.write_line(
            "Each test process's log, its tests in order and its failures in full: "
            f"{config.rootpath / FOLDER}/"
        )
