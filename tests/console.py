"""Running the console script `automation` as a user does: a subprocess with its own environment."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from dataclasses import dataclass
from pathlib import Path

from app.config import Settings

AUTOMATION = str(Path(sys.executable).with_name("automation"))


@dataclass(frozen=True)
class Ran:
    returncode: int
    stdout: str
    stderr: str


def environment_without_settings(**values: str) -> dict[str, str]:
    """This process's environment with none of the service's settings, plus `values`."""
    names = {name.upper() for name in Settings.model_fields}
    return {k: v for k, v in os.environ.items() if k not in names} | values


async def run_automation(*args: str, env: dict[str, str], cwd: Path) -> Ran:
    process = await asyncio.create_subprocess_exec(
        AUTOMATION,
        *args,
        env=env,
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await process.communicate()
    assert process.returncode is not None
    return Ran(process.returncode, stdout.decode(), stderr.decode())


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}
