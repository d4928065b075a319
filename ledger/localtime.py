"""Slots in a neighbourhood's local time: the ledger stores UTC slot numbers, people read
local clock times, local days and local months.

A slot is ``unix_seconds // SLOT_SECONDS``. Local days are not always 96 slots: the day clocks
go forward has 92 and the day they go back has 100 (in Europe/Paris, the last Sundays of March
and October), so every span here is computed from local midnights, never by counting slots.
Pure functions of integers, dates and an IANA zone name.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ledger.errors import LedgerError
from ledger.types import SLOT_SECONDS

__all__ = [
    "DEFAULT_ZONE",
    "LocalTimeError",
    "day_span",
    "local_date",
    "month_span",
    "slot_iso",
    "slot_span_label",
    "slot_start",
    "slot_time",
    "span_label",
    "zone",
]

DEFAULT_ZONE = "Europe/Paris"


class LocalTimeError(LedgerError, ValueError):
    """An unknown time zone, or a month that does not exist."""


@lru_cache(maxsize=64)
def zone(name: str) -> ZoneInfo:
    """The IANA zone ``name``; :class:`LocalTimeError` for a name the zone database lacks."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise LocalTimeError(
            f"unknown time zone {name!r}: use an IANA name such as 'Europe/Paris'"
        ) from exc


def slot_start(slot: int, tz: str) -> datetime:
    """The slot's first instant, as an aware local datetime."""
    return datetime.fromtimestamp(slot * SLOT_SECONDS, UTC).astimezone(zone(tz))


def slot_iso(slot: int, tz: str) -> str:
    """The slot's start in ISO 8601 with the local offset, e.g. ``2026-03-29T03:00:00+02:00``."""
    return slot_start(slot, tz).isoformat()


def slot_time(slot: int, tz: str) -> str:
    """The slot's local start as ``HH:MM``; on the night the clocks go back, the hour that
    comes twice carries its zone's abbreviation (``02:15 CEST``, then ``02:15 CET``)."""
    start = slot_start(slot, tz)
    text = start.strftime("%H:%M")
    if start.replace(fold=1 - start.fold).utcoffset() != start.utcoffset():
        text += f" {start.tzname()}"
    return text


def slot_span_label(slot: int, tz: str) -> str:
    """The slot's local date and span with the zone's abbreviation, e.g.
    ``2026-11-26 14:15-14:30 CET``; a slot that crosses a clock change shows both offsets'
    names (``02:45-02:00 CEST/CET`` reads oddly but truly)."""
    start = slot_start(slot, tz)
    end = slot_start(slot + 1, tz)
    names = start.tzname() if start.tzname() == end.tzname() else f"{start.tzname()}/{end.tzname()}"
    return f"{start:%Y-%m-%d %H:%M}-{end:%H:%M} {names}"


def span_label(first_slot: int, last_slot: int, tz: str) -> str:
    """Slots ``first_slot..last_slot`` as a local period: ``2026-06-21 11:30-13:30 CEST``
    within a day, ``2026-06-21 00:00-24:00 CEST`` for a whole day, and ``2026-06-21 00:00 CEST
    to 2026-06-23 12:00 CEST`` across days (each end with its own offset's name)."""
    start, end = slot_start(first_slot, tz), slot_start(last_slot + 1, tz)
    a, b = start.tzname(), end.tzname()
    names = a if a == b else f"{a}/{b}"
    if end.date() == start.date():
        return f"{start:%Y-%m-%d %H:%M}-{end:%H:%M} {names}"
    if end.date() == start.date() + timedelta(days=1) and end.time() == time(0):
        return f"{start:%Y-%m-%d %H:%M}-24:00 {names}"
    return f"{start:%Y-%m-%d %H:%M} {a} to {end:%Y-%m-%d %H:%M} {b}"


def local_date(slot: int, tz: str) -> date:
    """The local calendar day the slot starts in."""
    return slot_start(slot, tz).date()


def _first_slot_of(day: date, tz: str) -> int:
    midnight = datetime.combine(day, time(0), tzinfo=zone(tz))
    # Local midnight is always a real instant (clock changes happen at night, not at 00:00, in
    # every zone Voisin runs in); a slot boundary because offsets are whole quarter hours.
    return int(midnight.timestamp()) // SLOT_SECONDS


def day_span(day: date, tz: str) -> tuple[int, int]:
    """The first and last slot of the local ``day`` (92, 96 or 100 slots in Europe)."""
    return _first_slot_of(day, tz), _first_slot_of(day + timedelta(days=1), tz) - 1


def month_span(year: int, month: int, tz: str) -> tuple[int, int]:
    """The first and last slot of a local calendar month."""
    if not 1 <= month <= 12 or not 1 <= year <= 9998:
        raise LocalTimeError(f"no such month: {year}-{month}")
    first = date(year, month, 1)
    after = date(year + 1, 1, 1) if month == 12 else date(year, month + 1, 1)
    return _first_slot_of(first, tz), _first_slot_of(after, tz) - 1
