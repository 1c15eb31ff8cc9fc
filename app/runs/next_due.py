"""When a site's scheduled run is next due (SPEC §9): daily, weekly or monthly at a wall-clock
time in the site's time zone.

A pure function of the schedule, the zone and "now", so the config endpoint and the scheduler
compute the same instant and tests need no clock. Wall-clock times are resolved DST-safely
(`app.wallclock`): a time skipped by a spring-forward gap runs at the end of the gap, an ambiguous
fall-back time runs at its first occurrence.
"""

from __future__ import annotations

import calendar
from datetime import date, datetime, time, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from app.models.automation import Frequency
from app.wallclock import resolve_wall_time

# Far enough to reach the next monthly date from any day (two whole months plus a day).
_LOOKAHEAD_DAYS = 64


class Schedule(Protocol):
    """The config fields a schedule is made of (an `AutomationConfig` is one)."""

    @property
    def enabled(self) -> bool: ...
    @property
    def frequency(self) -> str: ...
    @property
    def scheduled_time(self) -> time: ...
    @property
    def weekly_day(self) -> int: ...
    @property
    def monthly_day(self) -> int: ...


def next_run_at(schedule: Schedule, timezone: str, now: datetime) -> datetime | None:
    """The first due instant strictly after `now` (aware), in UTC; None when disabled."""
    if not schedule.enabled:
        return None
    if now.tzinfo is None:
        raise ValueError("now must be an aware datetime")
    zone = ZoneInfo(timezone)
    # From the day before: a time pushed past midnight by a gap belongs to the previous date.
    first = now.astimezone(zone).date() - timedelta(days=1)
    for offset in range(_LOOKAHEAD_DAYS):
        day = first + timedelta(days=offset)
        if not _is_due_on(schedule, day):
            continue
        instant = resolve_wall_time(day, schedule.scheduled_time, zone)
        if instant > now:
            return instant
    raise AssertionError("a daily, weekly or monthly schedule is always due within two months")


def _is_due_on(schedule: Schedule, day: date) -> bool:
    match Frequency(schedule.frequency):
        case Frequency.DAILY:
            return True
        case Frequency.WEEKLY:
            return day.weekday() == schedule.weekly_day
        case Frequency.MONTHLY:
            last_day = calendar.monthrange(day.year, day.month)[1]
            return day.day == min(schedule.monthly_day, last_day)
