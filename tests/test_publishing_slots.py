"""Publishing slots: pure functions of the rules, the site's zone, now and the taken instants."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from app.publishing.slots import LOOKAHEAD_DAYS, next_slots

WEEKDAYS_ONLY = ["mon", "tue", "wed", "thu", "fri"]
EVERY_DAY = [*WEEKDAYS_ONLY, "sat", "sun"]


@dataclass
class Rules:
    scheduling_mode: str = "time_slots"
    publish_days: list[str] = field(default_factory=lambda: list(WEEKDAYS_ONLY))
    publish_time_slots: list[str] = field(default_factory=lambda: ["09:00", "14:00", "18:00"])
    stagger_start_time: time = time(9, 0)
    stagger_end_time: time = time(18, 0)
    stagger_interval_minutes: int = 15


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def local(text: str, zone: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(zone))


# 2026-03-02 is a Monday.
MONDAY_MORNING = utc("2026-03-02 08:00")


class TestTimeSlots:
    def test_each_publish_day_at_each_slot_time_in_order(self) -> None:
        slots = next_slots(Rules(), "UTC", MONDAY_MORNING, [], 4)

        assert slots == [
            utc("2026-03-02 09:00"),
            utc("2026-03-02 14:00"),
            utc("2026-03-02 18:00"),
            utc("2026-03-03 09:00"),
        ]

    def test_a_slot_earlier_today_than_now_is_skipped(self) -> None:
        assert next_slots(Rules(), "UTC", utc("2026-03-02 14:00"), [], 1) == [
            utc("2026-03-02 18:00")
        ]

    def test_after_the_last_slot_of_the_day_the_next_day_begins(self) -> None:
        assert next_slots(Rules(), "UTC", utc("2026-03-02 19:30"), [], 1) == [
            utc("2026-03-03 09:00")
        ]

    def test_days_off_are_skipped(self) -> None:
        friday_evening = utc("2026-03-06 19:00")

        slots = next_slots(Rules(), "UTC", friday_evening, [], 2)

        assert slots == [utc("2026-03-09 09:00"), utc("2026-03-09 14:00")]

    def test_only_the_chosen_days(self) -> None:
        rules = Rules(publish_days=["wed", "sat"], publish_time_slots=["12:00"])

        slots = next_slots(rules, "UTC", MONDAY_MORNING, [], 3)

        assert [s.strftime("%a %d") for s in slots] == ["Wed 04", "Sat 07", "Wed 11"]

    def test_taken_instants_are_skipped_whatever_zone_they_are_given_in(self) -> None:
        # 09:00 UTC given as Tokyo wall time: compared as an instant, it is taken.
        taken = [local("2026-03-02 18:00", "Asia/Tokyo"), utc("2026-03-02 18:00")]

        slots = next_slots(Rules(), "UTC", MONDAY_MORNING, taken, 2)

        assert slots == [utc("2026-03-02 14:00"), utc("2026-03-03 09:00")]

    def test_fewer_than_asked_when_ninety_days_are_full(self) -> None:
        rules = Rules(publish_days=EVERY_DAY, publish_time_slots=["09:00"])

        slots = next_slots(rules, "UTC", MONDAY_MORNING, [], 1000)

        assert len(slots) == LOOKAHEAD_DAYS
        assert slots[-1] == utc("2026-03-02 09:00") + timedelta(days=LOOKAHEAD_DAYS - 1)
        assert next_slots(rules, "UTC", MONDAY_MORNING, slots, 1) == []

    def test_nothing_asked_nothing_found(self) -> None:
        assert next_slots(Rules(), "UTC", MONDAY_MORNING, [], 0) == []

    def test_now_must_be_an_instant(self) -> None:
        with pytest.raises(ValueError, match="aware"):
            next_slots(Rules(), "UTC", datetime(2026, 3, 2, 8), [], 1)


class TestSiteTimezone:
    def test_tokyo_slots_are_tokyo_wall_times_on_tokyo_days(self) -> None:
        # Sunday 23:30 UTC is already Monday 08:30 in Tokyo: Monday's 09:00 slot is next.
        now = utc("2026-03-01 23:30")

        slots = next_slots(Rules(), "Asia/Tokyo", now, [], 2)

        assert slots == [utc("2026-03-02 00:00"), utc("2026-03-02 05:00")]
        assert [s.astimezone(ZoneInfo("Asia/Tokyo")).hour for s in slots] == [9, 14]

    def test_new_york_slots_follow_new_york_days(self) -> None:
        # Saturday 01:00 UTC is still Friday 20:00 in New York: the weekend is skipped.
        now = utc("2026-03-07 01:00")

        slots = next_slots(Rules(), "America/New_York", now, [], 1)

        assert slots == [local("2026-03-09 09:00", "America/New_York")]
        assert slots[0] == utc("2026-03-09 13:00")


class TestDaylightSaving:
    def test_spring_forward_slot_in_the_gap_publishes_at_the_end_of_the_gap_once(self) -> None:
        # New York, 2026-03-08: 02:00 EST jumps to 03:00 EDT. 02:30 does not exist.
        rules = Rules(publish_days=EVERY_DAY, publish_time_slots=["02:30", "03:00", "09:00"])

        slots = next_slots(rules, "America/New_York", utc("2026-03-08 05:00"), [], 3)

        assert slots == [
            utc("2026-03-08 07:00"),  # 02:30 and 03:00 both mean 03:00 EDT: one slot
            utc("2026-03-08 13:00"),  # 09:00 EDT
            utc("2026-03-09 06:30"),  # 02:30 EDT the next day
        ]

    def test_fall_back_day_has_no_duplicate_slot(self) -> None:
        # New York, 2026-11-01: 02:00 EDT falls back to 01:00 EST; 01:00-01:59 happen twice.
        rules = Rules(
            scheduling_mode="stagger",
            publish_days=EVERY_DAY,
            stagger_start_time=time(0, 30),
            stagger_end_time=time(2, 30),
            stagger_interval_minutes=30,
        )

        slots = next_slots(rules, "America/New_York", utc("2026-11-01 04:00"), [], 5)

        assert slots == [
            utc("2026-11-01 04:30"),  # 00:30 EDT
            utc("2026-11-01 05:00"),  # 01:00 EDT, its first occurrence
            utc("2026-11-01 05:30"),  # 01:30 EDT
            utc("2026-11-01 07:00"),  # 02:00 EST
            utc("2026-11-01 07:30"),  # 02:30 EST
        ]
        assert len(set(slots)) == len(slots)

    def test_berlin_spring_forward_and_fall_back(self) -> None:
        rules = Rules(publish_days=EVERY_DAY, publish_time_slots=["02:30"])

        spring = next_slots(rules, "Europe/Berlin", utc("2026-03-28 12:00"), [], 2)
        autumn = next_slots(rules, "Europe/Berlin", utc("2026-10-24 12:00"), [], 2)

        # 2026-03-29 02:00 CET -> 03:00 CEST: 02:30 becomes 03:00 CEST (01:00 UTC).
        assert spring == [utc("2026-03-29 01:00"), utc("2026-03-30 00:30")]
        # 2026-10-25 03:00 CEST -> 02:00 CET: 02:30 is its first occurrence (CEST).
        assert autumn == [utc("2026-10-25 00:30"), utc("2026-10-26 01:30")]

    def test_stagger_through_a_spring_forward_gap_counts_the_gap_once(self) -> None:
        rules = Rules(
            scheduling_mode="stagger",
            publish_days=EVERY_DAY,
            stagger_start_time=time(1, 30),
            stagger_end_time=time(3, 30),
            stagger_interval_minutes=30,
        )

        slots = next_slots(rules, "America/New_York", utc("2026-03-08 05:00"), [], 4)

        # 01:30 EST, then 02:00/02:30/03:00 all mean 03:00 EDT, then 03:30 EDT.
        assert slots == [
            utc("2026-03-08 06:30"),
            utc("2026-03-08 07:00"),
            utc("2026-03-08 07:30"),
            utc("2026-03-09 05:30"),
        ]


class TestStagger:
    def test_from_start_to_end_inclusive_every_interval(self) -> None:
        rules = Rules(
            scheduling_mode="stagger",
            stagger_start_time=time(9, 0),
            stagger_end_time=time(10, 0),
            stagger_interval_minutes=20,
        )

        slots = next_slots(rules, "UTC", MONDAY_MORNING, [], 5)

        assert slots == [
            utc("2026-03-02 09:00"),
            utc("2026-03-02 09:20"),
            utc("2026-03-02 09:40"),
            utc("2026-03-02 10:00"),
            utc("2026-03-03 09:00"),
        ]

    def test_starts_after_now_and_skips_taken_slots(self) -> None:
        rules = Rules(scheduling_mode="stagger", stagger_interval_minutes=15)
        now = utc("2026-03-02 09:07")

        slots = next_slots(rules, "UTC", now, [utc("2026-03-02 09:30")], 3)

        assert slots == [utc("2026-03-02 09:15"), utc("2026-03-02 09:45"), utc("2026-03-02 10:00")]

    def test_end_not_on_the_interval_is_not_passed(self) -> None:
        rules = Rules(
            scheduling_mode="stagger",
            stagger_start_time=time(9, 0),
            stagger_end_time=time(9, 45),
            stagger_interval_minutes=25,
        )

        slots = next_slots(rules, "UTC", MONDAY_MORNING, [], 3)

        assert slots == [utc("2026-03-02 09:00"), utc("2026-03-02 09:25"), utc("2026-03-03 09:00")]

    def test_skips_days_off_in_the_site_zone(self) -> None:
        rules = Rules(scheduling_mode="stagger", publish_days=["sun"])

        slots = next_slots(rules, "Asia/Tokyo", MONDAY_MORNING, [], 1)

        assert slots == [local("2026-03-08 09:00", "Asia/Tokyo")]


class TestImmediate:
    def test_every_item_is_due_at_the_current_second_on_any_day(self) -> None:
        rules = Rules(scheduling_mode="immediate", publish_days=[])
        saturday = utc("2026-03-07 03:04:05.250000")

        slots = next_slots(rules, "Asia/Tokyo", saturday, [], 3)

        # All due already: the next publish pass sends them together.
        assert slots == [utc("2026-03-07 03:04:05")] * 3

    def test_taken_instants_do_not_push_an_immediate_item_back(self) -> None:
        now = utc("2026-03-02 08:00:00.250000")
        taken = [utc("2026-03-02 08:00:00"), utc("2026-03-02 08:00:01")]

        slots = next_slots(Rules(scheduling_mode="immediate"), "UTC", now, taken, 2)

        assert slots == [utc("2026-03-02 08:00:00")] * 2
