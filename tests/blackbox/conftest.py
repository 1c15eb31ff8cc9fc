"""Fixtures of the black-box fault suite: one deployment per module (its scenarios run one after
another on it), put back whole after each scenario whatever the scenario stopped."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from tests.blackbox.deployment import Deployment, Postgres
from tests.servers.redis_server import RedisServer


@asynccontextmanager
async def deployed(
    tmp_path_factory: pytest.TempPathFactory, topology: str, *, persistent_redis: bool
) -> AsyncIterator[Deployment]:
    """The deployment lives in a folder of /tmp, not under pytest's: as root, PostgreSQL runs as
    the `pgserver` user, which must traverse the folder's parents, and every pytest session
    starting on the machine makes /tmp/pytest-of-root private again. The processes' logs are
    kept under pytest's folder at the end."""
    folder = Path(tempfile.mkdtemp(prefix=f"ca-blackbox-{topology}-"))
    deployment = Deployment(
        folder,
        topology,
        Postgres(folder / "postgres"),
        RedisServer(folder / "redis", persistent=persistent_redis),
    )
    try:
        await deployment.start()
        yield deployment
    finally:
        await deployment.stop()
        await asyncio.to_thread(_keep_logs, folder, tmp_path_factory.mktemp(f"{topology}-logs"))


def _keep_logs(folder: Path, logs: Path) -> None:
    for log in folder.glob("*.log"):
        shutil.copy(log, logs)
    shutil.rmtree(folder, ignore_errors=True)


async def restore(deployment: Deployment) -> None:
    """Start again whatever a scenario left stopped, so the next one starts whole."""
    if deployment.redis.process is None or deployment.redis.process.returncode is not None:
        await deployment.redis.start()
    if not deployment.postgres.running:
        await deployment.postgres.start()
    for service in deployment.services.values():
        if not service.running:
            await service.start()
    await deployment.wait_until_ready()
