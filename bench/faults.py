"""Faults against the service as deployed: how soon runs move again, and what is lost.

    .venv/bin/python -m bench.faults [--topology serve|split|both] [--rounds N]

Starts `automation serve`, and `automation api` with two `automation worker`s, each on a
PostgreSQL and a redis-server of its own (the black-box suite's deployment,
`tests/blackbox/deployment.py`), and puts each through the suite's faults N times: Redis stopped
for 20 s, PostgreSQL restarted, a worker SIGKILLed (split only), SIGTERM mid-request. Every round
starts two sites' runs, injects the fault mid-stage and waits for the runs to end.

Printed per fault: the seconds from the backend's (or the process's) return to the runs' next
item, the runs that did not complete (stuck or failed), the double charges (an idempotency key
twice, or a run whose total differs from what the ledger settled), the items lost (left pending
by a completed run), and the requests that got a 5xx or a refused connection outside the fault.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import tempfile
from pathlib import Path

import httpx

from tests.blackbox.conftest import restore
from tests.blackbox.deployment import Deployment, Postgres
from tests.blackbox.scenarios import (
    Fault,
    Outcome,
    api_terminated_mid_request,
    postgres_restart,
    redis_outage,
    scenario,
    worker_killed,
)
from tests.servers.redis_server import RedisServer

FAULTS: dict[str, list[tuple[str, Fault]]] = {
    "serve": [
        ("redis stopped 20 s", redis_outage),
        ("postgres restarted", postgres_restart),
        ("serve SIGTERMed", api_terminated_mid_request),
    ],
    "split": [
        ("redis stopped 20 s", redis_outage),
        ("postgres restarted", postgres_restart),
        ("worker SIGKILLed", worker_killed),
        ("api SIGTERMed", api_terminated_mid_request),
    ],
}


async def measure(
    topology: str, rounds: int, folder: Path
) -> tuple[list[Outcome], list[tuple[str, str, dict[str, int | None]]]]:
    """Each fault's rounds; a round that could not finish (a process exited, the runs never
    ended) is a failure with its reason and the processes that had exited."""
    # As the suite: serve on an append-only Redis (embedded and production keep one), split on
    # a Redis that keeps nothing (the worst case: a restart loses the queue and the leases).
    deployment = Deployment(
        folder / topology,
        topology,
        Postgres(folder / topology / "postgres"),
        RedisServer(folder / topology / "redis", persistent=topology == "serve"),
    )
    (folder / topology).mkdir(parents=True)
    outcomes: list[Outcome] = []
    failures: list[tuple[str, str, dict[str, int | None]]] = []
    try:
        await deployment.start()
        for name, fault in FAULTS[topology]:
            for _ in range(rounds):
                try:
                    outcomes.append(await scenario(deployment, name, fault))
                except (AssertionError, TimeoutError, httpx.TransportError) as exc:
                    failures.append(
                        (name, f"{type(exc).__name__}: {exc}"[:300], deployment.exited())
                    )
                await restore(deployment)
    finally:
        await deployment.stop()
    return outcomes, failures


def report(
    topology: str,
    outcomes: list[Outcome],
    failures: list[tuple[str, str, dict[str, int | None]]],
) -> None:
    print(f"\n{topology}")
    print(
        f"  {'fault':<22}{'rounds':>7}{'recovery s (max)':>18}{'not completed':>15}"
        f"{'double charges':>16}{'items lost':>12}{'bad answers':>13}{'exited':>8}"
    )
    by_fault: dict[str, list[Outcome]] = {}
    for outcome in outcomes:
        by_fault.setdefault(outcome.fault, []).append(outcome)
    for fault, group in by_fault.items():
        recoveries = [o.recovery_seconds for o in group if o.recovery_seconds is not None]
        shown = (
            f"{statistics.median(recoveries):.1f} ({max(recoveries):.1f})" if recoveries else "-"
        )
        stuck = sum(sum(s != "completed" for s in o.statuses.values()) for o in group)
        doubled = sum(o.audit.double_charges for o in group)
        lost = sum(sum(o.audit.items_left_pending.values()) for o in group)
        bad = sum(len(o.problems) for o in group)
        exited = sum(len(o.exited) for o in group)
        print(
            f"  {fault:<22}{len(group):>7}{shown:>18}{stuck:>15}{doubled:>16}{lost:>12}"
            f"{bad:>13}{exited:>8}"
        )
    for fault, reason, exited_then in failures:
        print(f"  {fault}: round failed ({reason}); exited: {exited_then or 'none'}")


async def main(topologies: list[str], rounds: int) -> None:
    folder = Path(tempfile.mkdtemp(prefix="bench-faults-"))
    try:
        for topology in topologies:
            report(topology, *await measure(topology, rounds, folder))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--topology", choices=["serve", "split", "both"], default="both")
    parser.add_argument("--rounds", type=int, default=1, help="rounds of each fault")
    args = parser.parse_args()
    chosen = ["serve", "split"] if args.topology == "both" else [args.topology]
    asyncio.run(main(chosen, args.rounds))
