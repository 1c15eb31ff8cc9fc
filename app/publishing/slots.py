"""When approved content goes out (SPEC §9): the next free publishing instants of a site.

Pure functions of the site's publishing rules, its time zone, "now", the instants already taken
and how many are wanted, so the scheduler and the tests need no clock and no database.

- `time_slots`: every publish day at each of `publish_time_slots`.
- `stagger`: every publish day from `stagger_start_time` to `stagger_end_time` (inclusive), every
  `stagger_interval_minutes`.
- `immediate`: the current second for every item, whatever the day: all of them are due at once,
  so the next publish pass sends them all (the queue keeps their order by id).

Wall-clock times are in the site's time zone and resolved DST-safely by `resolve_wall_time`: a
time skipped by a spring-forward gap publishes at the end of the gap (and two slots that land
there count once); a fall-back day's repeated hour is used once, at its first occurrence.
Instants are compared as instants (aware, UTC), never as naive wall times.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from datetime import UTC, datetime, time, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from app.models.publishing import WEEKDAYS, SchedulingMode
from app.wallclock import resolve_wall_time

LOOKAHEAD_DAYS = 90


class SlotRules(Protocol):
    """The settings fields slots are made of (a `PublishingSettings` is one)."""

    @property
    def scheduling_mode(self) -> str: ...
    @property
    def publish_days(self) -> list[str]: ...
    @property
    def publish_time_slots(self) -> list[str]: ...
    @property
    def stagger_start_time(self) -> time: ...
    @property
    def stagger_end_time(self) -> time: ...
    @property
    def stagger_interval_minutes(self) -> int: ...


def next_slots(
    rules: SlotRules,
    timezone: str,
    now: datetime,
    taken: Collection[datetime],
    count: int,
) -> list[datetime]:
    """Up to `count` free instants strictly after `now`, earliest first, in UTC; fewer when the
    next 90 days have no more free slots. Immediate mode: `count` times the second `now` is in
    (an immediate slot is no capacity to share)."""
    if now.tzinfo is None:
        raise ValueError("now must be an aware datetime")
    if count <= 0:
        return []
    now = now.astimezone(UTC)
    if SchedulingMode(rules.scheduling_mode) is SchedulingMode.IMMEDIATE:
        return [now.replace(microsecond=0)] * count
    busy = {instant.astimezone(UTC) for instant in taken}
    candidates = _wall_clock_slots(rules, ZoneInfo(timezone), now)
    found: list[datetime] = []
    for instant in candidates:
        if instant not in busy:
            found.append(instant)
            busy.add(instant)
            if len(found) == count:
                break
    return found


def _wall_clock_slots(rules: SlotRules, zone: ZoneInfo, now: datetime) -> Iterator[datetime]:
    """Every slot of the publish days after `now`, in order, each instant once."""
    days = {WEEKDAYS.index(day) for day in rules.publish_days if day in WEEKDAYS}
    times = _times_of_day(rules)
    today = now.astimezone(zone).date()
    last: datetime | None = None
    # From yesterday: a late slot pushed past midnight by a gap belongs to the previous date.
    for offset in range(-1, LOOKAHEAD_DAYS):
        day = today + timedelta(days=offset)
        if day.weekday() not in days:
            continue
        for at in times:
            instant = resolve_wall_time(day, at, zone)
            # Wall times of one day resolve in order; a gap can map several onto one instant.
            if instant > now and (last is None or instant > last):
                last = instant
                yield instant


def _times_of_day(rules: SlotRules) -> list[time]:
    if SchedulingMode(rules.scheduling_mode) is SchedulingMode.TIME_SLOTS:
        return sorted({time.fromisoformat(slot) for slot in rules.publish_time_slots})
    start = _minutes(rules.stagger_start_time)
    end = _minutes(rules.stagger_end_time)
    step = max(rules.stagger_interval_minutes, 1)
    return [time(m // 60, m % 60) for m in range(start, end + 1, step)]


def _minutes(at: time) -> int:
    return at.hour * 60 + at.minute
