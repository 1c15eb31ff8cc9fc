"""Where a bench's CPU goes: the CPU time each part of the deployment spent while the runs ran,
per AI call, and what the machine can do at that cost.

The parts are processes of this machine read from /proc (Linux): the workers, the API, the AI
server the bench runs, PostgreSQL's processes of the bench's database (found by the database's
name in their titles, sampled as they come and go), and this process. Redis says its own CPU
(`INFO cpu`), so it counts wherever it runs. A PostgreSQL on another machine is left out, and the
report says so.

On a machine whose CPUs are all busy, the calls in flight cannot exceed what the CPUs can pay
for: C CPUs at M ms of CPU a call finish at most 1000 C / M calls a second, so at a call latency
of L ms at most C / M x L are in flight at once (Little's law); and a worker's event loop runs
on one CPU at a time, however many the machine has. The report prints both ceilings beside the
cap, and the CPU a call that 95 % of the cap needs.
"""

from __future__ import annotations

import math
import os
import resource
import time
from dataclasses import dataclass, field
from pathlib import Path

from redis.asyncio import Redis
from sqlalchemy.engine import make_url

TICKS = os.sysconf("SC_CLK_TCK")
# The yardstick the benchmark notes have used since stop 23: `python -c` of this loop, its names
# globals of a module (a function's locals run it twice as fast, so it is run the same way).
_SPEED_LOOP = compile("s = 0\nfor i in range(3000000): s += i\n", "<machine speed>", "exec")


def machine_speed() -> str:
    """How fast this machine runs Python now: the seconds of a pure-Python loop of 3 million
    additions at module level, the best of three. The benchmark notes compare machines by it:
    on one kind of machine it moved from 0.16 to 0.25 s between sessions, and by a fifth within
    one, and the CPU-bound figures with it. Each bench prints it as it starts and as it ends."""
    best = math.inf
    for _ in range(3):
        started = time.perf_counter()
        exec(_SPEED_LOOP, {})  # noqa: S102 - a constant loop of our own
        best = min(best, time.perf_counter() - started)
    return f"machine speed: 3 million additions in {best:.3f} s (pure Python, best of 3)"


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process, all its threads (Linux: /proc)."""
    # The command name, in parentheses, may hold spaces: the fields counted are after it.
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    user, system = int(fields[11]), int(fields[12])
    return (user + system) / TICKS


def process_cpu() -> float:
    """User and system CPU time of this process, all its threads."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _machine() -> tuple[float, float]:
    """(busy, all) CPU seconds of the machine since boot, over all its CPUs."""
    ticks = [int(n) for n in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    idle = ticks[3] + ticks[4]  # idle and iowait
    return (sum(ticks) - idle) / TICKS, sum(ticks) / TICKS


async def _redis_seconds(redis: Redis) -> float:
    info = await redis.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def _database_processes(database: str) -> dict[int, float]:
    """PostgreSQL's processes working on `database` now (its backends and autovacuum
    workers: their titles name it), with their CPU seconds so far."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            title = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            if title.startswith("postgres: ") and f" {database} " in title:
                found[int(entry.name)] = cpu_seconds(int(entry.name))
        except OSError:  # gone meanwhile
            continue
    return found


@dataclass
class CpuUse:
    """CPU seconds each part spent in the window; `machine_busy` the share of the machine's
    CPU time that was busy (all processes, the bench's and any other)."""

    parts: dict[str, float]
    # How many processes make up each part the meter was given the processes of.
    processes: dict[str, int]
    cpus: int
    machine_busy: float
    database_found: bool


# The bench's OpenAI-compatible server, in the report.
AI_SERVER_PART = "AI server (the bench's)"


@dataclass
class CpuMeter:
    """`start()` before the work, `sample()` now and then while it goes on (PostgreSQL's
    processes come and go), `stop()` after it."""

    processes: dict[str, list[int]]
    database: str
    redis: Redis
    # What this process is, in the report.
    own: str = "this bench"
    _began: dict[str, float] = field(default_factory=dict)
    _database_began: dict[int, float] = field(default_factory=dict)
    _database_last: dict[int, float] = field(default_factory=dict)
    _machine_began: tuple[float, float] = (0.0, 0.0)

    async def start(self) -> None:
        self._began = {name: self._seconds(pids) for name, pids in self.processes.items()}
        self._began["Redis"] = await _redis_seconds(self.redis)
        self._began[self.own] = process_cpu()
        self._database_began = _database_processes(self.database)
        self._database_last = dict(self._database_began)
        self._machine_began = _machine()

    def sample(self) -> None:
        self._database_last.update(_database_processes(self.database))

    async def stop(self) -> CpuUse:
        self.sample()
        parts = {
            name: self._seconds(pids) - self._began[name] for name, pids in self.processes.items()
        }
        parts["PostgreSQL"] = sum(
            seconds - self._database_began.get(pid, 0.0)
            for pid, seconds in self._database_last.items()
        )
        parts["Redis"] = await _redis_seconds(self.redis) - self._began["Redis"]
        parts[self.own] = process_cpu() - self._began[self.own]
        (busy_now, all_now), (busy_then, all_then) = _machine(), self._machine_began
        busy, whole = busy_now - busy_then, all_now - all_then
        counts = {name: len(pids) for name, pids in self.processes.items()}
        return CpuUse(
            parts,
            {**counts, self.own: 1},
            os.cpu_count() or 1,
            busy / whole if whole else 0.0,
            database_found=bool(self._database_last),
        )

    @classmethod
    def of(
        cls,
        database_url: str | None,
        redis: Redis,
        processes: dict[str, list[int]],
        ai_server_pid: int | None,
        own: str = "this bench",
    ) -> CpuMeter:
        """A meter of these processes, the bench's AI server (when it runs one), and
        PostgreSQL's processes of the URL's database."""
        assert database_url is not None
        database = make_url(database_url).database
        assert database is not None
        if ai_server_pid is not None:
            processes = {**processes, AI_SERVER_PART: [ai_server_pid]}
        return cls(processes, database, redis, own=own)

    @staticmethod
    def _seconds(pids: list[int]) -> float:
        return sum(cpu_seconds(pid) for pid in pids)


def report(use: CpuUse, calls: int, latency_ms: int, slots: int, *, of: str, worker: str) -> None:
    """Print the CPU per AI call of each part, the calls in flight the CPUs pay for at that cost
    against `slots` (`of`: what they are, "the cap"), and what 95 % of them needs; `worker` is
    the part the others are set against."""
    if not calls:
        return
    per_call = {name: 1000 * seconds / calls for name, seconds in use.parts.items()}
    total = sum(per_call.values())
    shown = ", ".join(f"{name} {ms:.1f}" for name, ms in per_call.items())
    print(f"CPU per AI call while the runs ran, ms: {shown}; all {total:.1f}")
    if not use.database_found:
        print("  (PostgreSQL runs on another machine: its CPU is not counted)")
    ceiling = use.cpus * 1000 / total
    in_flight = ceiling * latency_ms / 1000
    print(
        f"  at that cost {use.cpus} CPUs pay for {ceiling:.0f} calls/s, {in_flight:.1f} calls in "
        f"flight at {latency_ms} ms a call ({100 * in_flight / slots:.0f}% of {of}); the "
        f"machine's CPUs were busy {100 * use.machine_busy:.0f}% of the time"
    )
    # A worker's event loop runs on one CPU at a time.
    loops = use.processes.get(worker, 1)
    alone = loops * 1000 / per_call[worker] if per_call.get(worker) else math.inf
    print(
        f"  {worker} alone, {loops} event loop{'s' if loops > 1 else ''} at one CPU"
        f"{' each' if loops > 1 else ''} at most: {alone:.0f} calls/s, "
        f"{alone * latency_ms / 1000:.1f} in flight "
        f"({100 * alone * latency_ms / 1000 / slots:.0f}% of {of})"
    )
    needed = use.cpus * latency_ms / (0.95 * slots)
    others = total - per_call.get(worker, 0.0)
    print(
        f"  95% of {of} at {latency_ms} ms a call needs at most {needed:.1f} ms of CPU a call "
        f"in all on these CPUs, and at most {loops * latency_ms / (0.95 * slots):.1f} ms of "
        f"{worker}; the other parts took {others:.1f}"
    )
