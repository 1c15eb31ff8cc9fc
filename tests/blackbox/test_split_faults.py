"""`automation api` and two `automation worker` processes, as deployed with Docker, through
backend and process faults. Redis here keeps nothing on disk, so an outage loses the queue, the
leases and the signals: the worst case for the workers.

Each scenario asserts what `test_serve_faults` does.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.blackbox.conftest import deployed, restore
from tests.blackbox.deployment import Deployment
from tests.blackbox.scenarios import (
    api_terminated_mid_request,
    postgres_restart,
    redis_outage,
    scenario,
    worker_killed,
)

pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
async def split(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Deployment]:
    async with deployed(tmp_path_factory, "split", persistent_redis=False) as deployment:
        yield deployment


@pytest.fixture
async def deployment(split: Deployment) -> AsyncIterator[Deployment]:
    yield split
    await restore(split)


async def test_redis_stopped_for_20_s_mid_run(deployment: Deployment) -> None:
    outcome = await scenario(deployment, "redis stopped 20 s", redis_outage)
    outcome.assert_clean()


async def test_postgres_restarted_mid_run(deployment: Deployment) -> None:
    outcome = await scenario(deployment, "postgres restarted", postgres_restart)
    outcome.assert_clean()


async def test_worker_sigkilled_mid_run(deployment: Deployment) -> None:
    outcome = await scenario(deployment, "worker SIGKILLed", worker_killed)
    outcome.assert_clean()


async def test_api_sigterm_mid_request(deployment: Deployment) -> None:
    outcome = await scenario(deployment, "api SIGTERMed", api_terminated_mid_request)
    outcome.assert_clean()
