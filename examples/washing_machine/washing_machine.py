"""When should I run the washing machine? A third-party app on Voisin's public API.

It reads, with an API key of scope ``public:read`` and nothing else, what the neighbourhood's
settled slots say: in each slot, how much of the solar surplus no neighbour bought
(``unmatched_surplus_Wh``: it went to the grid at the feed-in price). An hour where some was
left is an hour where a washing machine would have run on the neighbourhood's own sun. The app
lists those hours of a day; for tomorrow, the hours where Voisin's forecast expects the
neighbourhood to send more to the grid than it takes (``GET /v1/forecast``: the expected net
position per hour), or, while Voisin has too few days of readings to forecast, the same hours
as today (a persistence guess, and the app says so). With ``--follow`` it keeps listening to
the live feed and updates its advice as each slot settles.

It uses only Voisin's public surface: the generated client (``clients/python``) for the REST
reads, and the live feed (``GET /feed``, Server-Sent Events) through httpx-sse.

    python examples/washing_machine/washing_machine.py --url http://127.0.0.1:8000 --key vak_…
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
from httpx_sse import connect_sse
from voisin_client import AuthenticatedClient
from voisin_client.api.forecast import neighbourhood_forecast
from voisin_client.api.market import slot_outcome, tariffs
from voisin_client.models import ForecastOut, SlotOutcome, TariffsOut

SLOT_SECONDS = 900
#: Surplus left in an hour (Wh) from which the hour is worth a wash: a cycle draws about
#: 0.8 kWh over two hours.
DEFAULT_THRESHOLD_WH = 400


# ───────────────────────────── The advice (pure) ─────────────────────────────


@dataclass(frozen=True, slots=True)
class Hour:
    """One local hour of a day and the surplus no neighbour bought in it (Wh)."""

    start: datetime
    leftover_Wh: int
    settled_slots: int


def slot_start(slot: int, tz: ZoneInfo) -> datetime:
    return datetime.fromtimestamp(slot * SLOT_SECONDS, UTC).astimezone(tz)


def day_slots(day: date, tz: ZoneInfo) -> range:
    """The slots of a local day (92, 96 or 100 of them, as the clocks change)."""
    start = datetime.combine(day, datetime.min.time(), tz)
    end = datetime.combine(day + timedelta(days=1), datetime.min.time(), tz)
    return range(int(start.timestamp()) // SLOT_SECONDS, int(end.timestamp()) // SLOT_SECONDS)


def hours_of(leftovers: dict[int, int], tz: ZoneInfo) -> list[Hour]:
    """Leftover surplus per settled slot, summed per local hour, in time order."""
    hours: dict[datetime, list[int]] = {}
    for slot, leftover in leftovers.items():
        start = slot_start(slot, tz).replace(minute=0)
        hours.setdefault(start, []).append(leftover)
    return [Hour(start, sum(v), len(v)) for start, v in sorted(hours.items())]


def good_hours(hours: Iterable[Hour], threshold_Wh: int) -> list[Hour]:
    return [h for h in hours if h.leftover_Wh >= threshold_Wh]


def tomorrow_guess(today: Iterable[Hour]) -> list[Hour]:
    """Tomorrow's hours, guessed as today's: the same surplus at the same local time."""
    out = []
    for hour in today:
        local = hour.start.replace(tzinfo=None) + timedelta(days=1)
        out.append(Hour(local.replace(tzinfo=hour.start.tzinfo), hour.leftover_Wh, 0))
    return out


def expected_hours(forecast: ForecastOut, day: date, tz: ZoneInfo) -> list[Hour]:
    """The hours of ``day`` in a forecast, each with the surplus the neighbourhood is expected
    to send to the grid (its expected net position, when positive)."""
    out = []
    for hour in forecast.hours:
        start = datetime.fromisoformat(hour.starts_at).astimezone(tz).replace(minute=0)
        if start.date() == day:
            out.append(Hour(start, max(0, hour.net_wh), 0))
    return out


def leftover_of_event(data: dict[str, object]) -> tuple[int, int] | None:
    """(slot, leftover Wh) of a ``slot_settled`` event's data: what was exported and not sold
    to a neighbour (``export_Wh - local_Wh``)."""
    try:
        slot = int(data["slot"])  # type: ignore[call-overload]
        leftover = int(data["export_Wh"]) - int(data["local_Wh"])  # type: ignore[call-overload]
    except (KeyError, TypeError, ValueError):
        return None
    return slot, max(0, leftover)


#: How each day's advice was made, as the app says it.
SETTLED, FORECAST, GUESS = "settled", "forecast", "guess"
_LABELS = {
    SETTLED: "",
    FORECAST: " (expected: Voisin's forecast)",
    GUESS: " (expected: the same hours as today; Voisin has no forecast yet)",
}


def describe(day: date, hours: list[Hour], threshold_Wh: int, source: str = SETTLED) -> str:
    good = good_hours(hours, threshold_Wh)
    label = f"{day:%A %d %B}" + _LABELS[source]
    if not good:
        return f"{label}: no hour with {threshold_Wh} Wh of local surplus"
    spans = ", ".join(f"{h.start:%H:00}-{h.start + timedelta(hours=1):%H:00}" for h in good)
    return f"{label}: run it at {spans}"


# ───────────────────────────── Reading Voisin ─────────────────────────────


def client_for(url: str, key: str, timeout_s: float = 10.0) -> AuthenticatedClient:
    """The generated client, sending the key in ``X-API-Key``."""
    return AuthenticatedClient(
        base_url=url,
        token=key,
        prefix="",
        auth_header_name="X-API-Key",
        timeout=httpx.Timeout(timeout_s),
    )


class VoisinError(RuntimeError):
    """Voisin answered with an error (its code and message)."""


def current_slot(client: AuthenticatedClient) -> int:
    answer = tariffs.sync(client=client)
    if not isinstance(answer, TariffsOut):
        raise VoisinError(f"GET /v1/market/tariffs: {_problem(answer)}")
    return answer.current_slot


def settled_leftovers(client: AuthenticatedClient, slots: Iterable[int]) -> dict[int, int]:
    """Leftover surplus of each settled slot among ``slots`` (a slot not settled is left out)."""
    out: dict[int, int] = {}
    for slot in slots:
        response = slot_outcome.sync_detailed(slot=slot, client=client)
        if response.status_code == 404:
            continue  # not cleared (yet)
        answer = response.parsed
        if not isinstance(answer, SlotOutcome):
            raise VoisinError(f"GET /v1/market/slots/{slot}: {_problem(answer)}")
        if answer.status == "settled":
            out[slot] = answer.unmatched_surplus_wh
    return out


def _problem(answer: object) -> str:
    code, message = getattr(answer, "code", None), getattr(answer, "message", None)
    return f"{code}: {message}" if code else "no answer"


def forecast_for(client: AuthenticatedClient, hours: int = 48) -> ForecastOut | None:
    """The neighbourhood's forecast, or None while Voisin has none (too few days metered)."""
    response = neighbourhood_forecast.sync_detailed(client=client, hours=hours)
    if response.status_code == 409:
        return None
    answer = response.parsed
    if not isinstance(answer, ForecastOut):
        raise VoisinError(f"GET /v1/forecast: {_problem(answer)}")
    return answer


def day_leftovers(
    client: AuthenticatedClient, day: date, tz: ZoneInfo, now_slot: int | None = None
) -> dict[int, int]:
    """The leftover surplus of each settled slot of ``day``, up to the current slot."""
    now_slot = current_slot(client) if now_slot is None else now_slot
    return settled_leftovers(client, [s for s in day_slots(day, tz) if s < now_slot])


def follow(
    url: str,
    tz: ZoneInfo,
    on_slot: Callable[[int, int], bool],
    *,
    last_event_id: str | None = None,
    timeout_s: float = 30.0,
) -> str | None:
    """Listen to the public feed; call ``on_slot(slot, leftover_Wh)`` for each settled slot
    until it returns False. Returns the last event id seen (to resume with)."""
    headers = {"Last-Event-ID": last_event_id} if last_event_id else {}
    last = last_event_id
    timeout = httpx.Timeout(timeout_s, read=timeout_s)
    with (
        httpx.Client(base_url=url, timeout=timeout) as http,
        connect_sse(http, "GET", "/feed", headers=headers) as source,
    ):
        source.response.raise_for_status()
        for event in source.iter_sse():
            last = event.id or last
            if event.event != "slot_settled":
                continue
            settled = leftover_of_event(json.loads(event.data))
            if settled is not None and not on_slot(*settled):
                break
    return last


# ───────────────────────────── The command ─────────────────────────────


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="When should I run the washing machine?")
    parser.add_argument("--url", required=True, help="the Voisin server, e.g. http://host:8000")
    parser.add_argument("--key", required=True, help="an API key with scope public:read")
    parser.add_argument("--tz", default="Europe/Paris", help="the neighbourhood's time zone")
    parser.add_argument("--day", type=date.fromisoformat, help="a day other than today")
    parser.add_argument("--threshold", type=int, default=DEFAULT_THRESHOLD_WH, metavar="WH")
    parser.add_argument("--follow", action="store_true", help="then update on every slot")
    return parser.parse_args(argv)


def lines(
    day: date, hours: list[Hour], threshold_Wh: int, tomorrow: list[Hour] | None
) -> Iterator[str]:
    """Today's advice, then tomorrow's: from the forecast's hours if there are some, else
    today's hours again."""
    yield describe(day, hours, threshold_Wh)
    if tomorrow:
        yield describe(day + timedelta(days=1), tomorrow, threshold_Wh, FORECAST)
    else:
        yield describe(day + timedelta(days=1), tomorrow_guess(hours), threshold_Wh, GUESS)


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    tz = ZoneInfo(args.tz)
    day = args.day or datetime.now(tz).date()
    tomorrow: list[Hour] | None = None
    try:
        with client_for(args.url, args.key) as client:
            leftovers = day_leftovers(client, day, tz)
            forecast = forecast_for(client)
            if forecast is not None:
                tomorrow = expected_hours(forecast, day + timedelta(days=1), tz)
    except (VoisinError, httpx.HTTPError) as exc:
        print(f"washing machine: {exc}", file=sys.stderr)
        return 1
    for line in lines(day, hours_of(leftovers, tz), args.threshold, tomorrow):
        print(line)
    if not args.follow:
        return 0

    def update(slot: int, leftover: int) -> bool:
        if slot_start(slot, tz).date() == day:
            leftovers[slot] = leftover
            for line in lines(day, hours_of(leftovers, tz), args.threshold, tomorrow):
                print(line, flush=True)
        return True

    try:
        follow(args.url, tz, update)
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
