"""`automation serve` (API, worker and cron in one process) through backend faults.

Each scenario: two sites' runs in progress, a client polling the API throughout, the fault;
then every run ends `completed`, the process never exited, the client met a 503 only while
a backend was down, the ledger is exact and no item was written twice or left behind.
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
)

pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
async def serve(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Deployment]:
    # Redis with an append-only file, as the embedded one of `make run` and production keep it.
    async with deployed(tmp_path_factory, "serve", persistent_redis=True) as deployment:
        yield deployment


@pytest.fixture
async def deployment(serve: Deployment) -> AsyncIterator[Deployment]:
    yield serve
    await restore(serve)


async def test_redis_stopped_for_20_s_mid_run(deployment: Deployment) -> None:
    outcome = await scenario(deployment, "redis stopped 20 s", redis_outage)
    outcome.assert_clean()


async def test_postgres_restarted_mid_run(deployment: Deployment) -> None:
    outcome = await scenario(deployment, "postgres restarted", postgres_restart)
    outcome.assert_clean()


async def test_sigterm_mid_request_answers_it_and_a_restart_finishes_the_runs(
    deployment: Deployment,
) -> None:
    outcome = await scenario(deployment, "serve SIGTERMed", api_terminated_mid_request)
    outcome.assert_clean()
