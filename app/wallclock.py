"""Wall-clock times in a time zone as UTC instants, DST-safely: what the run schedule
(`app.runs.next_due`) and the publishing slots (`app.publishing.slots`) both resolve."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, tzinfo


def resolve_wall_time(day: date, at: time, zone: tzinfo) -> datetime:
    """The UTC instant of the wall-clock time `at` on `day` in `zone`.

    An ambiguous time (clocks set back) is its first occurrence (fold=0). A time that does not
    exist (clocks set forward) becomes the first instant after the gap, i.e. the transition.
    """
    wall = datetime.combine(day, at)
    earlier = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    if earlier.astimezone(zone).replace(tzinfo=None) == wall:
        return earlier
    # In a gap, fold=1 reads the wall time with the offset after the transition and fold=0
    # with the one before, so the transition lies between the two instants. PEP 495 gives no
    # direct way to the transition itself: bisect to the second (gaps last minutes to hours).
    before = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)
    after = earlier
    offset_before = before.astimezone(zone).utcoffset()
    while after - before > timedelta(seconds=1):
        middle = before + (after - before) / 2
        middle = middle.replace(microsecond=0)
        if middle.astimezone(zone).utcoffset() == offset_before:
            before = middle
        else:
            after = middle
    return after
