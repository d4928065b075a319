"""Local time of a neighbourhood (ledger/localtime.py): local days and months as slot spans,
and slot times as a reader sees them, on ordinary days and on the days clocks change.

Europe/Paris in 2026: clocks go forward on Sunday 29 March at 01:00 UTC (02:00 CET becomes
03:00 CEST) and back on Sunday 25 October at 01:00 UTC (03:00 CEST becomes 02:00 CET)."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime

import pytest

from ledger import localtime
from ledger.localtime import LocalTimeError
from ledger.types import SLOT_SECONDS

PARIS = "Europe/Paris"
NEW_YORK = "America/New_York"


def slot_at(year: int, month: int, day: int, hour: int, minute: int) -> int:
    """The slot that starts at this UTC time."""
    instant = datetime(year, month, day, hour, minute, tzinfo=UTC)
    return int(instant.timestamp()) // SLOT_SECONDS


def count(span: tuple[int, int]) -> int:
    first, last = span
    return last - first + 1


# ───────────────────────────── Local days ─────────────────────────────


def test_an_ordinary_day_has_96_slots_from_local_midnight_to_local_midnight() -> None:
    first, last = localtime.day_span(date(2026, 11, 26), PARIS)
    # Winter: local midnight is 23:00 UTC the day before.
    assert first == slot_at(2026, 11, 25, 23, 0)
    assert last == slot_at(2026, 11, 26, 22, 45)
    assert count((first, last)) == 96
    assert localtime.slot_iso(first, PARIS) == "2026-11-26T00:00:00+01:00"
    assert localtime.slot_time(last, PARIS) == "23:45"


def test_a_summer_day_starts_at_22_utc() -> None:
    first, last = localtime.day_span(date(2026, 7, 14), PARIS)
    assert first == slot_at(2026, 7, 13, 22, 0)
    assert count((first, last)) == 96
    assert localtime.slot_iso(first, PARIS) == "2026-07-14T00:00:00+02:00"


def test_the_last_sunday_of_march_has_92_slots() -> None:
    first, last = localtime.day_span(date(2026, 3, 29), PARIS)
    assert first == slot_at(2026, 3, 28, 23, 0)  # midnight CET
    assert last == slot_at(2026, 3, 29, 21, 45)  # 23:45 CEST
    assert count((first, last)) == 92
    assert localtime.slot_iso(first, PARIS) == "2026-03-29T00:00:00+01:00"
    assert localtime.slot_iso(last, PARIS) == "2026-03-29T23:45:00+02:00"
    # The local times of the day's slots: 02:00 to 02:45 do not exist that day.
    times = [localtime.slot_time(s, PARIS) for s in range(first, last + 1)]
    assert len(set(times)) == 92
    assert "01:45" in times and "03:00" in times
    assert not {"02:00", "02:15", "02:30", "02:45"} & set(times)
    # The days either side are ordinary.
    assert localtime.day_span(date(2026, 3, 28), PARIS)[1] == first - 1
    assert localtime.day_span(date(2026, 3, 30), PARIS)[0] == last + 1
    assert count(localtime.day_span(date(2026, 3, 30), PARIS)) == 96


def test_the_last_sunday_of_october_has_100_slots() -> None:
    first, last = localtime.day_span(date(2026, 10, 25), PARIS)
    assert first == slot_at(2026, 10, 24, 22, 0)  # midnight CEST
    assert last == slot_at(2026, 10, 25, 22, 45)  # 23:45 CET
    assert count((first, last)) == 100
    assert localtime.slot_iso(first, PARIS) == "2026-10-25T00:00:00+02:00"
    assert localtime.slot_iso(last, PARIS) == "2026-10-25T23:45:00+01:00"
    # 02:00 to 02:45 happen twice, once in summer time and once in winter time: each says
    # which, so that no two slots of the day read alike.
    times = [localtime.slot_time(s, PARIS) for s in range(first, last + 1)]
    assert [t for t in times if t.startswith("02:")] == [
        f"02:{m} {name}" for name in ("CEST", "CET") for m in ("00", "15", "30", "45")
    ]
    assert len(set(times)) == 100
    assert "01:45" in times and "03:00" in times
    assert localtime.day_span(date(2026, 10, 24), PARIS)[1] == first - 1
    assert localtime.day_span(date(2026, 10, 26), PARIS)[0] == last + 1


def test_every_slot_of_a_day_has_that_local_date() -> None:
    for day in (date(2026, 3, 29), date(2026, 10, 25), date(2026, 11, 26)):
        first, last = localtime.day_span(day, PARIS)
        assert {localtime.local_date(s, PARIS) for s in range(first, last + 1)} == {day}
        assert localtime.local_date(first - 1, PARIS) == date.fromordinal(day.toordinal() - 1)
        assert localtime.local_date(last + 1, PARIS) == date.fromordinal(day.toordinal() + 1)


def test_a_slot_just_before_local_midnight_belongs_to_the_utc_day_after() -> None:
    # 22:30 UTC on 24 October is 00:30 local on the 25th (still summer time).
    slot = slot_at(2026, 10, 24, 22, 30)
    assert localtime.local_date(slot, PARIS) == date(2026, 10, 25)
    assert localtime.slot_time(slot, PARIS) == "00:30"
    start = localtime.slot_start(slot, PARIS)
    assert (start.year, start.month, start.day, start.hour, start.minute) == (2026, 10, 25, 0, 30)
    assert start.utcoffset() is not None and start.utcoffset().total_seconds() == 7200  # type: ignore[union-attr]


# ───────────────────────────── Local months ─────────────────────────────


@pytest.mark.parametrize(
    ("year", "month", "first_utc", "after_utc", "slots"),
    [
        # March: starts in winter time, ends in summer time, loses an hour.
        (2026, 3, (2026, 2, 28, 23, 0), (2026, 3, 31, 22, 0), 31 * 96 - 4),
        # October: starts in summer time, ends in winter time, gains an hour.
        (2026, 10, (2026, 9, 30, 22, 0), (2026, 10, 31, 23, 0), 31 * 96 + 4),
        (2026, 11, (2026, 10, 31, 23, 0), (2026, 11, 30, 23, 0), 30 * 96),
        (2026, 2, (2026, 1, 31, 23, 0), (2026, 2, 28, 23, 0), 28 * 96),
        (2028, 2, (2028, 1, 31, 23, 0), (2028, 2, 29, 23, 0), 29 * 96),
        # December runs into the next year's January.
        (2026, 12, (2026, 11, 30, 23, 0), (2026, 12, 31, 23, 0), 31 * 96),
    ],
)
def test_a_month_spans_its_local_midnights(
    year: int,
    month: int,
    first_utc: tuple[int, int, int, int, int],
    after_utc: tuple[int, int, int, int, int],
    slots: int,
) -> None:
    first, last = localtime.month_span(year, month, PARIS)
    assert first == slot_at(*first_utc)
    assert last == slot_at(*after_utc) - 1
    assert count((first, last)) == slots
    assert localtime.slot_iso(first, PARIS).startswith(f"{year:04d}-{month:02d}-01T00:00:00")
    assert localtime.slot_time(last, PARIS) == "23:45"


def test_the_months_of_a_year_follow_each_other_without_gap() -> None:
    spans = [localtime.month_span(2026, m, PARIS) for m in range(1, 13)]
    for (_, last), (first, _) in itertools.pairwise(spans):
        assert first == last + 1
    assert localtime.month_span(2027, 1, PARIS)[0] == spans[-1][1] + 1
    # A year is 365 days of 96 slots: the hour lost in March comes back in October.
    assert sum(count(s) for s in spans) == 365 * 96


def test_a_month_is_the_sum_of_its_days() -> None:
    for month in (3, 10):
        first, last = localtime.month_span(2026, month, PARIS)
        days = [localtime.day_span(date(2026, month, d), PARIS) for d in range(1, 32)]
        assert days[0][0] == first and days[-1][1] == last
        assert sum(count(d) for d in days) == count((first, last))


@pytest.mark.parametrize(("year", "month"), [(2026, 0), (2026, 13), (2026, -1), (0, 5), (9999, 1)])
def test_a_month_that_does_not_exist_is_refused(year: int, month: int) -> None:
    with pytest.raises(LocalTimeError, match="no such month"):
        localtime.month_span(year, month, PARIS)


# ───────────────────────────── Slot times and labels ─────────────────────────────


@pytest.mark.parametrize(
    ("utc", "iso"),
    [
        # March: the last winter slot, then the first summer one.
        ((2026, 3, 29, 0, 45), "2026-03-29T01:45:00+01:00"),
        ((2026, 3, 29, 1, 0), "2026-03-29T03:00:00+02:00"),
        # October: 02:30 twice, first in summer time then in winter time.
        ((2026, 10, 25, 0, 30), "2026-10-25T02:30:00+02:00"),
        ((2026, 10, 25, 0, 45), "2026-10-25T02:45:00+02:00"),
        ((2026, 10, 25, 1, 0), "2026-10-25T02:00:00+01:00"),
        ((2026, 10, 25, 1, 30), "2026-10-25T02:30:00+01:00"),
    ],
)
def test_slot_iso_carries_the_offset_in_force(
    utc: tuple[int, int, int, int, int], iso: str
) -> None:
    slot = slot_at(*utc)
    assert localtime.slot_iso(slot, PARIS) == iso
    # The ISO text names the same instant as the slot.
    assert int(datetime.fromisoformat(iso).timestamp()) == slot * SLOT_SECONDS


@pytest.mark.parametrize(
    ("utc", "label"),
    [
        ((2026, 3, 29, 0, 30), "2026-03-29 01:30-01:45 CET"),
        ((2026, 3, 29, 0, 45), "2026-03-29 01:45-03:00 CET/CEST"),
        ((2026, 3, 29, 1, 0), "2026-03-29 03:00-03:15 CEST"),
        ((2026, 10, 25, 0, 30), "2026-10-25 02:30-02:45 CEST"),
        ((2026, 10, 25, 0, 45), "2026-10-25 02:45-02:00 CEST/CET"),
        ((2026, 10, 25, 1, 0), "2026-10-25 02:00-02:15 CET"),
        ((2026, 10, 25, 1, 30), "2026-10-25 02:30-02:45 CET"),
        ((2026, 11, 26, 13, 15), "2026-11-26 14:15-14:30 CET"),
        ((2026, 7, 14, 10, 0), "2026-07-14 12:00-12:15 CEST"),
        # The last slot of a local day ends at the next day's 00:00.
        ((2026, 11, 26, 22, 45), "2026-11-26 23:45-00:00 CET"),
    ],
)
def test_slot_span_label_names_the_zone(utc: tuple[int, int, int, int, int], label: str) -> None:
    assert localtime.slot_span_label(slot_at(*utc), PARIS) == label


def test_the_two_0230_slots_of_october_read_apart() -> None:
    summer, winter = slot_at(2026, 10, 25, 0, 30), slot_at(2026, 10, 25, 1, 30)
    assert winter - summer == 4
    assert localtime.slot_time(summer, PARIS) == "02:30 CEST"
    assert localtime.slot_time(winter, PARIS) == "02:30 CET"
    assert localtime.slot_span_label(summer, PARIS) != localtime.slot_span_label(winter, PARIS)
    assert localtime.slot_iso(summer, PARIS) != localtime.slot_iso(winter, PARIS)


# ───────────────────────────── Zones ─────────────────────────────


@pytest.mark.parametrize(
    "name", ["Europe/Lyon", "Mars/Olympus_Mons", "CEST", "", "../etc/passwd", "Europe//Paris"]
)
def test_an_unknown_zone_is_refused_with_a_hint(name: str) -> None:
    with pytest.raises(LocalTimeError, match="unknown time zone") as refused:
        localtime.slot_iso(slot_at(2026, 1, 1, 0, 0), name)
    assert "Europe/Paris" in str(refused.value)
    with pytest.raises(LocalTimeError):
        localtime.day_span(date(2026, 1, 1), name)
    with pytest.raises(LocalTimeError):
        localtime.month_span(2026, 1, name)


def test_local_time_error_is_a_value_error() -> None:
    # Callers that catch ValueError for bad input catch an unknown zone too.
    with pytest.raises(ValueError):
        localtime.zone("Nowhere/Special")


def test_utc_days_are_always_96_slots() -> None:
    for day in (date(2026, 3, 29), date(2026, 10, 25)):
        first, last = localtime.day_span(day, "UTC")
        assert first == slot_at(day.year, day.month, day.day, 0, 0)
        assert count((first, last)) == 96
        assert localtime.slot_iso(first, "UTC") == f"{day.isoformat()}T00:00:00+00:00"


def test_new_york_changes_on_its_own_days() -> None:
    # In 2026, New York springs forward on 8 March and falls back on 1 November (at 02:00
    # local); Paris's change days are ordinary days there.
    assert count(localtime.day_span(date(2026, 3, 8), NEW_YORK)) == 92
    assert count(localtime.day_span(date(2026, 11, 1), NEW_YORK)) == 100
    assert count(localtime.day_span(date(2026, 3, 29), NEW_YORK)) == 96
    assert count(localtime.day_span(date(2026, 10, 25), NEW_YORK)) == 96
    first, _ = localtime.day_span(date(2026, 11, 26), NEW_YORK)
    assert first == slot_at(2026, 11, 26, 5, 0)
    # 01:30 happens twice on 1 November: EDT (-04:00), then EST (-05:00).
    edt, est = slot_at(2026, 11, 1, 5, 30), slot_at(2026, 11, 1, 6, 30)
    assert localtime.slot_iso(edt, NEW_YORK) == "2026-11-01T01:30:00-04:00"
    assert localtime.slot_iso(est, NEW_YORK) == "2026-11-01T01:30:00-05:00"
    assert localtime.slot_span_label(edt, NEW_YORK) == "2026-11-01 01:30-01:45 EDT"
    assert localtime.slot_span_label(est, NEW_YORK) == "2026-11-01 01:30-01:45 EST"
    assert localtime.slot_span_label(slot_at(2026, 11, 1, 5, 45), NEW_YORK) == (
        "2026-11-01 01:45-01:00 EDT/EST"
    )
    # A slot late in the UTC day is still the day before in New York.
    late = slot_at(2026, 11, 27, 2, 0)
    assert localtime.local_date(late, NEW_YORK) == date(2026, 11, 26)
    assert localtime.slot_time(late, NEW_YORK) == "21:00"
    first, last = localtime.month_span(2026, 11, NEW_YORK)
    assert first == slot_at(2026, 11, 1, 4, 0)  # midnight EDT
    assert last == slot_at(2026, 12, 1, 5, 0) - 1  # up to midnight EST
    assert count((first, last)) == 30 * 96 + 4


def test_zones_with_a_half_hour_offset_still_start_days_on_a_slot() -> None:
    # India (+05:30) and Nepal (+05:45): local midnight is still a quarter-hour boundary.
    for name, utc in (
        ("Asia/Kolkata", (2026, 11, 25, 18, 30)),
        ("Asia/Kathmandu", (2026, 11, 25, 18, 15)),
    ):
        first, last = localtime.day_span(date(2026, 11, 26), name)
        assert first == slot_at(*utc)
        assert count((first, last)) == 96
        assert localtime.slot_time(first, name) == "00:00"
